//! `POST /api/participants`: creates or updates a participant with its data
//! and schedules, all in one transaction. Every chatbot the body names is
//! checked before anything is written, so an unknown chatbot in any entry
//! leaves nothing behind (unlike the original, which keeps the participant).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use store::entity::{chatbot, participant, schedule};
use uuid::Uuid;

use super::data as pdata;
use super::listing::{Detail, data_rows, detail};
use crate::channels::Platform;
use crate::ids::{ChatbotId, ParticipantId, TeamId, UserId};
use crate::schedules::ScheduleStatus;
use crate::values::strip_controls;
use crate::{Domain, Error, Result, Tx};

#[derive(Debug, Clone)]
pub struct ScheduleInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub prompt: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub delete: bool,
}

#[derive(Debug, Clone)]
pub struct UpsertItem {
    pub experiment: Uuid,
    /// `None` or an empty object leaves existing data untouched.
    pub data: Option<Map<String, Value>>,
    pub schedules: Vec<ScheduleInput>,
}

#[derive(Debug, Clone)]
pub struct Upsert {
    pub identifier: String,
    pub name: Option<String>,
    pub platform: Platform,
    pub items: Vec<UpsertItem>,
}

fn schedule_key(name: &str, chatbot_id: ChatbotId, participant_id: ParticipantId) -> String {
    let h = Sha256::digest(format!("{name}{chatbot_id}{participant_id}").as_bytes());
    hex::encode_upper(&h[..3])[..5].to_string()
}

fn random_key() -> String {
    let u = Uuid::new_v4();
    hex::encode_upper(&u.as_bytes()[..3])[..5].to_string()
}

/// Creates or updates the participant and its data and schedules, all in one
/// transaction, and returns the participant with all its data rows.
pub async fn upsert(
    domain: &Domain,
    team_id: TeamId,
    user_id: Option<UserId>,
    u: Upsert,
) -> Result<Detail> {
    let tx = domain.begin().await?;
    // Every chatbot first: nothing is written unless all exist in the team.
    let wanted: Vec<Uuid> = u.items.iter().map(|i| i.experiment).collect();
    let rows = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::IsArchived.eq(false))
        .filter(chatbot::Column::PublicId.is_in(wanted.clone()))
        .all(&*tx)
        .await?;
    let families: HashMap<Uuid, ChatbotId> = rows
        .iter()
        .map(|r| (r.public_id, ChatbotId(r.working_version_id.unwrap_or(r.id))))
        .collect();
    let mut missing: Vec<Uuid> = Vec::new();
    for w in &wanted {
        if !families.contains_key(w) && !missing.contains(w) {
            missing.push(*w);
        }
    }
    if !missing.is_empty() {
        return Err(Error::ChatbotsNotFound(missing));
    }
    let identifier = u.platform.normalize_identifier(&u.identifier);
    let p = super::get_or_create(&tx, team_id, u.platform, &identifier, None).await?;
    if let Some(name) = &u.name {
        super::set_name(&tx, p.id, name).await?;
    }
    for item in &u.items {
        let family = *families
            .get(&item.experiment)
            .ok_or_else(|| Error::internal("chatbot vanished"))?;
        match item.data.as_ref().filter(|d| !d.is_empty()) {
            Some(d) => {
                let data = strip_controls(&Value::Object(d.clone()));
                pdata::set(&tx, team_id, p.id, family, &data).await?;
            }
            None => pdata::ensure(&tx, team_id, p.id, family).await?,
        }
        apply_schedules(&tx, team_id, family, p.id, user_id, &item.schedules).await?;
    }
    tx.commit().await?;
    let row = participant::Entity::find_by_id(p.id.0)
        .one(&domain.db.write)
        .await?
        .ok_or_else(|| Error::internal("participant vanished"))?;
    let mut data = data_rows(&domain.db.write, &[p.id.0], None).await?;
    detail(row, data.remove(&p.id.0).unwrap_or_default())
}

async fn apply_schedules(
    tx: &Tx<'_>,
    team_id: TeamId,
    family: ChatbotId,
    participant_id: ParticipantId,
    user_id: Option<UserId>,
    schedules: &[ScheduleInput],
) -> Result<()> {
    let now = store::now();
    let scope = || {
        schedule::Entity::find()
            .filter(schedule::Column::ChatbotId.eq(family))
            .filter(schedule::Column::ParticipantId.eq(participant_id))
    };
    for s in schedules {
        if s.delete {
            let Some(id) = &s.id else { continue };
            schedule::Entity::update_many()
                .col_expr(schedule::Column::CancelledAt, Expr::value(now))
                .col_expr(
                    schedule::Column::CancelledBy,
                    Expr::value(user_id.map(i64::from)),
                )
                .col_expr(
                    schedule::Column::Status,
                    Expr::value(ScheduleStatus::Cancelled),
                )
                .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
                .filter(schedule::Column::ChatbotId.eq(family))
                .filter(schedule::Column::ParticipantId.eq(participant_id))
                .filter(schedule::Column::ExternalId.eq(id.clone()))
                .exec(&**tx)
                .await?;
            continue;
        }
        let (Some(name), Some(prompt), Some(date)) = (&s.name, &s.prompt, s.date) else {
            continue;
        };
        let key = match &s.id {
            Some(id) => id.clone(),
            None => {
                // A schedule without an id is always new: the derived key is
                // only used while no schedule has it yet.
                let mut k = schedule_key(name, family, participant_id);
                for _ in 0..10 {
                    let taken = schedule::Entity::find()
                        .filter(schedule::Column::ExternalId.eq(k.clone()))
                        .one(&**tx)
                        .await?
                        .is_some();
                    if !taken {
                        break;
                    }
                    k = random_key();
                }
                k
            }
        };
        let params = json!({"name": name, "prompt_text": prompt, "repetitions": 1, "frequency": 1, "time_period": "days"});
        match scope()
            .filter(schedule::Column::ExternalId.eq(key.clone()))
            .one(&**tx)
            .await?
        {
            Some(existing) => {
                let mut merged = existing.params.clone();
                if let Some(o) = merged.as_object_mut() {
                    o.insert("name".into(), json!(name));
                    o.insert("prompt_text".into(), json!(prompt));
                }
                let mut am: schedule::ActiveModel = existing.into();
                am.name = Set(name.clone());
                am.prompt = Set(prompt.clone());
                am.next_trigger_at = Set(date);
                am.params = Set(merged);
                am.updated_at = Set(now);
                am.update(&**tx).await?;
            }
            None => {
                schedule::ActiveModel {
                    team_id: Set(team_id.0),
                    external_id: Set(key),
                    chatbot_id: Set(family.0),
                    participant_id: Set(participant_id.0),
                    name: Set(name.clone()),
                    prompt: Set(prompt.clone()),
                    next_trigger_at: Set(date),
                    timezone: Set(None),
                    interval_seconds: Set(None),
                    cron: Set(None),
                    repetitions: Set(1),
                    total_triggers: Set(0),
                    end_date: Set(None),
                    status: Set(ScheduleStatus::Scheduled.as_str().into()),
                    cancelled_at: Set(None),
                    cancelled_by: Set(None),
                    last_triggered_at: Set(None),
                    last_error: Set(None),
                    params: Set(params),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&**tx)
                .await?;
            }
        }
    }
    Ok(())
}
