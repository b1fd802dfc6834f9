//! Participants and their per-chatbot data, as the management API lists and
//! upserts them. An upsert is one transaction: every chatbot it names is
//! checked before anything is written, so an unknown chatbot in any entry
//! leaves nothing behind (unlike the original, which keeps the participant).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use store::entity::{chatbot, participant, participant_data, schedule};
use uuid::Uuid;

use crate::conversations as conv;
use crate::pagination::{self, Listing, Order, Page, PageRequest, Position};
use crate::{Domain, Error, Result};

pub const PLATFORMS: &[&str] = &[
    "telegram",
    "web",
    "whatsapp",
    "facebook",
    "sureadhere",
    "api",
    "slack",
    "commcare_connect",
    "evaluations",
    "embedded_widget",
    "email",
];

#[derive(Debug, Clone)]
pub struct DataEntry {
    pub chatbot: String,
    pub chatbot_id: Uuid,
    pub data: Value,
    pub connect_channel_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Detail {
    pub id: Uuid,
    pub identifier: String,
    pub name: String,
    pub platform: String,
    pub remote_id: String,
    pub data: Vec<DataEntry>,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub identifier: Option<String>,
    pub platform: Option<String>,
    pub chatbot: Option<Uuid>,
}

/// Data rows of these participants (optionally of one chatbot family), in
/// creation order, with their chatbots: two queries.
async fn data_rows<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
    family: Option<i64>,
) -> Result<HashMap<i64, Vec<DataEntry>>> {
    let mut out: HashMap<i64, Vec<DataEntry>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.is_in(ids.iter().copied()));
    if let Some(f) = family {
        q = q.filter(participant_data::Column::ChatbotId.eq(f));
    }
    let rows = q
        .order_by_asc(participant_data::Column::CreatedAt)
        .order_by_asc(participant_data::Column::Id)
        .all(db)
        .await?;
    let bot_ids: Vec<i64> = rows.iter().map(|r| r.chatbot_id).collect();
    let bots: HashMap<i64, chatbot::Model> = if bot_ids.is_empty() {
        HashMap::new()
    } else {
        chatbot::Entity::find()
            .filter(chatbot::Column::Id.is_in(bot_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|b| (b.id, b))
            .collect()
    };
    for pd in rows {
        let Some(bot) = bots.get(&pd.chatbot_id) else {
            continue;
        };
        out.entry(pd.participant_id).or_default().push(DataEntry {
            chatbot: bot.name.clone(),
            chatbot_id: bot.public_id,
            data: serde_json::from_str(&pd.data).unwrap_or_else(|_| json!({})),
            connect_channel_id: pd
                .system_metadata
                .get("commcare_connect_channel_id")
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_i64().map(|i| i.to_string()))
                }),
        });
    }
    Ok(out)
}

fn detail(p: participant::Model, data: Vec<DataEntry>) -> Detail {
    Detail {
        id: p.public_id,
        identifier: p.identifier,
        name: p.name,
        platform: p.platform,
        remote_id: p.remote_id,
        data,
    }
}

/// A page of the team's participants, newest first.
pub async fn list(
    domain: &Domain,
    team_id: i64,
    filter: &Filter,
    req: &PageRequest,
) -> Result<Page<Detail>> {
    let db = &domain.db.read;
    let mut q = participant::Entity::find().filter(participant::Column::TeamId.eq(team_id));
    if let Some(i) = &filter.identifier {
        q = q.filter(participant::Column::Identifier.eq(i.clone()));
    }
    if let Some(p) = &filter.platform {
        q = q.filter(participant::Column::Platform.eq(p.clone()));
    }
    let mut family = None;
    if let Some(c) = filter.chatbot {
        let row = chatbot::Entity::find()
            .filter(chatbot::Column::TeamId.eq(team_id))
            .filter(chatbot::Column::PublicId.eq(c))
            .one(db)
            .await?;
        let fid = row.map_or(-1, |r| r.working_version_id.unwrap_or(r.id));
        family = Some(fid);
        q = q.filter(
            participant::Column::Id.in_subquery(
                Query::select()
                    .column(participant_data::Column::ParticipantId)
                    .from(participant_data::Entity)
                    .and_where(Expr::col(participant_data::Column::ChatbotId).eq(fid))
                    .to_owned(),
            ),
        );
    }
    let listing = Listing::<participant::Entity> {
        kind: "participants",
        order: Order::Desc,
        created_at: participant::Column::CreatedAt,
        id: participant::Column::Id,
    };
    let page = pagination::paginate(db, &domain.cursors, &listing, q, req, |m| Position {
        created_at: m.created_at,
        id: m.id,
    })
    .await?;
    let ids: Vec<i64> = page.items.iter().map(|p| p.id).collect();
    let mut data = data_rows(db, &ids, family).await?;
    Ok(page.map(|p| {
        let d = data.remove(&p.id).unwrap_or_default();
        detail(p, d)
    }))
}

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
    pub platform: String,
    pub items: Vec<UpsertItem>,
}

fn schedule_key(name: &str, chatbot_id: i64, participant_id: i64) -> String {
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
    team_id: i64,
    user_id: Option<i64>,
    u: Upsert,
) -> Result<Detail> {
    let db = &domain.db.write;
    let txn = db.begin().await?;
    // Every chatbot first: nothing is written unless all exist in the team.
    let wanted: Vec<Uuid> = u.items.iter().map(|i| i.experiment).collect();
    let rows = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::IsArchived.eq(false))
        .filter(chatbot::Column::PublicId.is_in(wanted.clone()))
        .all(&txn)
        .await?;
    let families: HashMap<Uuid, i64> = rows
        .iter()
        .map(|r| (r.public_id, r.working_version_id.unwrap_or(r.id)))
        .collect();
    let mut missing: Vec<Value> = Vec::new();
    for w in &wanted {
        if !families.contains_key(w)
            && !missing
                .iter()
                .any(|m| m["message"] == format!("Experiment {w} not found"))
        {
            missing.push(json!({"message": format!("Experiment {w} not found")}));
        }
    }
    if !missing.is_empty() {
        return Err(Error::Body(404, json!({ "errors": missing })));
    }
    let identifier = if u.platform == "commcare_connect" {
        u.identifier.to_lowercase()
    } else {
        u.identifier.clone()
    };
    let p = conv::participant_get_or_create(&txn, team_id, &u.platform, &identifier, None).await?;
    if let Some(name) = &u.name {
        participant::Entity::update_many()
            .col_expr(participant::Column::Name, Expr::value(name.clone()))
            .col_expr(participant::Column::UpdatedAt, Expr::value(store::now()))
            .filter(participant::Column::Id.eq(p.id))
            .exec(&txn)
            .await?;
    }
    let now = store::now();
    for item in &u.items {
        let family = *families
            .get(&item.experiment)
            .ok_or_else(|| Error::Internal("chatbot vanished".into()))?;
        let existing = participant_data::Entity::find()
            .filter(participant_data::Column::ParticipantId.eq(p.id))
            .filter(participant_data::Column::ChatbotId.eq(family))
            .one(&txn)
            .await?;
        let replacement = item
            .data
            .as_ref()
            .filter(|d| !d.is_empty())
            .map(|d| Value::Object(d.clone()));
        match (existing, replacement) {
            (Some(row), Some(data)) => {
                let mut am: participant_data::ActiveModel = row.into();
                am.data = Set(crate::sessions::strip_controls(&data).to_string());
                am.updated_at = Set(now);
                am.update(&txn).await?;
            }
            (Some(_), None) => {}
            (None, data) => {
                participant_data::ActiveModel {
                    team_id: Set(team_id),
                    participant_id: Set(p.id),
                    chatbot_id: Set(family),
                    data: Set(
                        crate::sessions::strip_controls(&data.unwrap_or_else(|| json!({})))
                            .to_string(),
                    ),
                    system_metadata: Set(json!({})),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
            }
        }
        apply_schedules(&txn, team_id, family, p.id, user_id, &item.schedules).await?;
    }
    txn.commit().await?;
    let row = participant::Entity::find_by_id(p.id)
        .one(&domain.db.write)
        .await?
        .ok_or_else(|| Error::Internal("participant vanished".into()))?;
    let mut data = data_rows(&domain.db.write, &[p.id], None).await?;
    Ok(detail(row, data.remove(&p.id).unwrap_or_default()))
}

async fn apply_schedules<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    family: i64,
    participant_id: i64,
    user_id: Option<i64>,
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
                .col_expr(schedule::Column::CancelledBy, Expr::value(user_id))
                .col_expr(schedule::Column::Status, Expr::value("cancelled"))
                .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
                .filter(schedule::Column::ChatbotId.eq(family))
                .filter(schedule::Column::ParticipantId.eq(participant_id))
                .filter(schedule::Column::ExternalId.eq(id.clone()))
                .exec(db)
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
                        .one(db)
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
            .one(db)
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
                am.update(db).await?;
            }
            None => {
                schedule::ActiveModel {
                    team_id: Set(team_id),
                    external_id: Set(key),
                    chatbot_id: Set(family),
                    participant_id: Set(participant_id),
                    name: Set(name.clone()),
                    prompt: Set(prompt.clone()),
                    next_trigger_at: Set(date),
                    timezone: Set(None),
                    interval_seconds: Set(None),
                    cron: Set(None),
                    repetitions: Set(1),
                    total_triggers: Set(0),
                    end_date: Set(None),
                    status: Set("scheduled".into()),
                    cancelled_at: Set(None),
                    cancelled_by: Set(None),
                    last_triggered_at: Set(None),
                    last_error: Set(None),
                    params: Set(params),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(db)
                .await?;
            }
        }
    }
    Ok(())
}
