//! A participant's data for a chatbot family (the document prompts and tools
//! read and write), and the system metadata kept beside it (consent, blocked).

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use store::entity::participant_data;

use crate::Result;
use crate::conn::{Reads, Writes};
use crate::ids::{ChatbotId, ParticipantId, TeamId};
use crate::values::object;

/// A participant's data for a chatbot family (`{}` when none).
pub async fn get(
    db: &impl Reads,
    participant_id: ParticipantId,
    family_id: ChatbotId,
) -> Result<Value> {
    let row = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db.reader())
        .await?;
    Ok(row
        .and_then(|r| serde_json::from_str(&r.data).ok())
        .unwrap_or_else(|| json!({})))
}

/// The top-level keys a turn set and removed in a participant's data: merged
/// into the data as it is when the turn commits, so a write in between (an
/// event trigger's `update_participant_data`, another turn) keeps its keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataChange {
    pub set: serde_json::Map<String, Value>,
    pub removed: Vec<String>,
}

impl DataChange {
    /// What turned `before` into `after`; `None` when nothing did.
    pub fn between(before: &Value, after: &Value) -> Option<Self> {
        let empty = serde_json::Map::new();
        let (b, a) = (
            before.as_object().unwrap_or(&empty),
            after.as_object().unwrap_or(&empty),
        );
        let change = DataChange {
            set: a
                .iter()
                .filter(|(k, v)| b.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            removed: b.keys().filter(|k| !a.contains_key(*k)).cloned().collect(),
        };
        (!change.set.is_empty() || !change.removed.is_empty()).then_some(change)
    }

    pub fn apply_to(&self, data: &mut serde_json::Map<String, Value>) {
        for k in &self.removed {
            data.remove(k);
        }
        data.extend(self.set.clone());
    }
}

/// Applies a change to the participant's data as it is now.
pub async fn merge(
    db: &impl Writes,
    team_id: TeamId,
    participant_id: ParticipantId,
    family_id: ChatbotId,
    change: &DataChange,
) -> Result<()> {
    // Read where it is written: inside the caller's transaction.
    let row = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db.writer())
        .await?;
    let mut data = object(
        row.and_then(|r| serde_json::from_str(&r.data).ok())
            .unwrap_or_else(|| json!({})),
    );
    change.apply_to(&mut data);
    set(db, team_id, participant_id, family_id, &Value::Object(data)).await
}

/// Replaces a participant's data for a chatbot family.
pub async fn set(
    db: &impl Writes,
    team_id: TeamId,
    participant_id: ParticipantId,
    family_id: ChatbotId,
    data: &Value,
) -> Result<()> {
    let db = db.writer();
    let now = store::now();
    let existing = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db)
        .await?;
    match existing {
        Some(row) => {
            let mut am: participant_data::ActiveModel = row.into();
            am.data = Set(data.to_string());
            am.updated_at = Set(now);
            am.update(db).await?;
        }
        None => insert(db, team_id, participant_id, family_id, data, json!({})).await?,
    }
    Ok(())
}

async fn insert<C: sea_orm::ConnectionTrait>(
    db: &C,
    team_id: TeamId,
    participant_id: ParticipantId,
    family_id: ChatbotId,
    data: &Value,
    system_metadata: Value,
) -> Result<()> {
    let now = store::now();
    participant_data::ActiveModel {
        team_id: Set(team_id.0),
        participant_id: Set(participant_id.0),
        chatbot_id: Set(family_id.0),
        data: Set(data.to_string()),
        system_metadata: Set(system_metadata),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Records that the participant blocked the bot on their platform: later
/// deliveries are not attempted until they write again.
pub async fn mark_blocked(
    db: &impl Writes,
    team_id: TeamId,
    participant_id: ParticipantId,
    family_id: ChatbotId,
    why: &str,
) -> Result<()> {
    let db = db.writer();
    let row = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db)
        .await?;
    let now = store::now();
    match row {
        Some(row) => {
            let mut meta = object(row.system_metadata.clone());
            meta.insert("consent".into(), json!(false));
            meta.insert("blocked".into(), json!(true));
            meta.insert("blocked_reason".into(), json!(why));
            let mut am: participant_data::ActiveModel = row.into();
            am.system_metadata = Set(Value::Object(meta));
            am.updated_at = Set(now);
            am.update(db).await?;
        }
        None => {
            let meta = json!({"consent": false, "blocked": true, "blocked_reason": why});
            insert(db, team_id, participant_id, family_id, &json!({}), meta).await?;
        }
    }
    Ok(())
}

/// Whether the participant blocked the bot (recorded at a failed delivery).
pub async fn is_blocked(
    db: &impl Reads,
    participant_id: ParticipantId,
    family_id: ChatbotId,
) -> Result<bool> {
    let db = db.reader();
    Ok(participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db)
        .await?
        .is_some_and(|r| r.system_metadata.get("blocked").and_then(Value::as_bool) == Some(true)))
}

/// A participant who writes again has unblocked the bot.
pub async fn clear_blocked(
    db: &impl Writes,
    participant_id: ParticipantId,
    family_id: ChatbotId,
) -> Result<()> {
    let db = db.writer();
    if !is_blocked(db, participant_id, family_id).await? {
        return Ok(());
    }
    let rows = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .all(db)
        .await?;
    for row in rows {
        let mut meta = object(row.system_metadata.clone());
        meta.remove("blocked");
        meta.remove("blocked_reason");
        meta.insert("consent".into(), json!(true));
        let mut am: participant_data::ActiveModel = row.into();
        am.system_metadata = Set(Value::Object(meta));
        am.update(db).await?;
    }
    Ok(())
}

/// Creates the participant's (empty) data row for a chatbot family if there is none.
pub async fn ensure(
    db: &impl Writes,
    team_id: TeamId,
    participant_id: ParticipantId,
    family_id: ChatbotId,
) -> Result<()> {
    let db = db.writer();
    let existing = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db)
        .await?;
    if existing.is_none() {
        set(db, team_id, participant_id, family_id, &json!({})).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_the_keys_it_did_not_touch() {
        let before = json!({"a": 1, "b": 2, "gone": true});
        let after = json!({"a": 1, "b": 3, "new": [1]});
        let c = DataChange::between(&before, &after).unwrap();
        assert_eq!(c.removed, ["gone"]);
        // A trigger wrote `seen` meanwhile: it stays.
        let mut now = object(json!({"a": 1, "b": 2, "gone": true, "seen": "yes"}));
        c.apply_to(&mut now);
        assert_eq!(
            Value::Object(now),
            json!({"a": 1, "b": 3, "new": [1], "seen": "yes"})
        );
        assert_eq!(DataChange::between(&before, &before), None);
    }
}
