//! `trigger_bot`: the bot messages a participant on a channel, with text it
//! writes from an instruction or text given verbatim. The session is resolved
//! (and data merged) in one transaction, which also enqueues the delivery job.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde_json::{Map, Value, json};
use store::entity::{channel, chatbot, session, team};
use uuid::Uuid;

use crate::conversations::{self as conv, NewSession, status};
use crate::jobs::{self, NewJob};
use crate::{Domain, Error, Result};

pub const SEND_JOB: &str = "bot.send";

#[derive(Debug, Clone)]
pub struct Trigger {
    pub identifier: String,
    pub platform: String,
    pub experiment: Uuid,
    pub prompt_text: Option<String>,
    pub message_text: Option<String>,
    pub start_new_session: bool,
    pub session_data: Map<String, Value>,
    pub participant_data: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Triggered {
    pub session_external_id: String,
    pub team_name: String,
    pub team_slug: String,
    pub channel: String,
}

fn detail(msg: String) -> Error {
    Error::BadRequest(msg)
}

pub async fn trigger(domain: &Domain, team_id: i64, t: Trigger) -> Result<Triggered> {
    let db = &domain.db.write;
    let row = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::PublicId.eq(t.experiment))
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(crate::chatbots::NOT_FOUND))?;
    // Channels belong to working versions: a version's id never has one.
    let ch = channel::Entity::find()
        .filter(channel::Column::ChatbotId.eq(row.id))
        .filter(channel::Column::Platform.eq(t.platform.clone()))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| {
            detail(format!(
                "Chatbot cannot send messages on the {} channel. Create the channel first.",
                t.platform
            ))
        })?;
    if !ch.enabled {
        return Err(detail(format!(
            "The {} channel for this chatbot is disabled.",
            t.platform
        )));
    }
    let identifier = if t.platform == "commcare_connect" {
        t.identifier.to_lowercase()
    } else {
        t.identifier.clone()
    };
    let txn = db.begin().await?;
    let p = conv::participant_get_or_create(&txn, team_id, &t.platform, &identifier, None).await?;
    let mut data = match conv::participant_data(&txn, p.id, row.id).await? {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    let before = data.clone();
    for (k, v) in &t.participant_data {
        data.insert(k.clone(), crate::sessions::strip_controls(v));
    }
    if data != before || !t.participant_data.is_empty() {
        conv::set_participant_data(&txn, team_id, p.id, row.id, &Value::Object(data)).await?;
    }
    let open = session::Entity::find()
        .filter(session::Column::ParticipantId.eq(p.id))
        .filter(session::Column::ChatbotId.eq(row.id))
        .filter(session::Column::Platform.eq(t.platform.clone()))
        .filter(session::Column::Status.is_not_in(status::CLOSED.iter().copied()))
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .one(&txn)
        .await?
        .map(conv::Session::from);
    let new = NewSession {
        team_id,
        participant_id: p.id,
        chatbot_row_id: row.id,
        channel_id: Some(ch.id),
        platform: Some(t.platform.clone()),
        version_number: 0,
        state: json!({}),
    };
    let s = match (open, t.start_new_session) {
        (Some(s), false) => s,
        (Some(s), true) => {
            conv::end_session(&txn, s.id, "user").await?;
            conv::create_session(&txn, new).await?
        }
        (None, _) => conv::create_session(&txn, new).await?,
    };
    if !t.session_data.is_empty() {
        let mut state = match s.state.clone() {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        for (k, v) in &t.session_data {
            state.insert(k.clone(), crate::sessions::strip_controls(v));
        }
        session::Entity::update_many()
            .col_expr(
                session::Column::State,
                Expr::value(Value::Object(state).to_string()),
            )
            .col_expr(session::Column::UpdatedAt, Expr::value(store::now()))
            .filter(session::Column::Id.eq(s.id))
            .exec(&txn)
            .await?;
    }
    let mut job = NewJob::new(
        SEND_JOB,
        json!({"session_id": s.id, "prompt_text": t.prompt_text, "message_text": t.message_text}),
    );
    job.team_id = Some(team_id);
    job.session_id = Some(s.id);
    job.max_attempts = 3;
    jobs::enqueue(&txn, job).await?;
    txn.commit().await?;
    domain.wake_workers(1);
    let tm = team::Entity::find_by_id(team_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("team vanished".into()))?;
    Ok(Triggered {
        session_external_id: s.external_id,
        team_name: tm.name,
        team_slug: tm.slug,
        channel: t.platform,
    })
}
