//! `trigger_bot`: the bot messages a participant on a channel, with text it
//! writes from an instruction or text given verbatim. The session is resolved
//! (and data merged) in one transaction, which also enqueues the delivery job.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};
use store::entity::{chatbot, team};
use uuid::Uuid;

use crate::channels::{self, Platform};
use crate::ids::{ChatbotId, TeamId};
use crate::jobs::{BotSend, BotSendPayload, NewJob};
use crate::participants::{self, data as pdata};
use crate::sessions::{self, EndedBy, NewSession};
use crate::values::{object, strip_controls};
use crate::{Domain, Error, Result};

#[derive(Debug, Clone)]
pub struct Trigger {
    pub identifier: String,
    pub platform: Platform,
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
    pub channel: Platform,
}

pub async fn trigger(domain: &Domain, team_id: TeamId, t: Trigger) -> Result<Triggered> {
    let db = &domain.db.write;
    let row = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::PublicId.eq(t.experiment))
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(crate::chatbots::NOT_FOUND))?;
    let bot = ChatbotId(row.id);
    // Channels belong to working versions: a version's id never has one.
    let (channel_id, enabled) = channels::family_channel(domain, bot, t.platform)
        .await?
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "Chatbot cannot send messages on the {} channel. Create the channel first.",
                t.platform
            ))
        })?;
    if !enabled {
        return Err(Error::BadRequest(format!(
            "The {} channel for this chatbot is disabled.",
            t.platform
        )));
    }
    let identifier = t.platform.normalize_identifier(&t.identifier);
    let mut tx = domain.begin().await?;
    let p = participants::get_or_create(&tx, team_id, t.platform, &identifier, None).await?;
    let mut data = object(pdata::get(&tx, p.id, bot).await?);
    let before = data.clone();
    for (k, v) in &t.participant_data {
        data.insert(k.clone(), strip_controls(v));
    }
    if data != before || !t.participant_data.is_empty() {
        pdata::set(&tx, team_id, p.id, bot, &Value::Object(data)).await?;
    }
    let open = sessions::latest_open(&tx, team_id, p.id, bot, Some(t.platform)).await?;
    let new = NewSession {
        team_id,
        participant_id: p.id,
        chatbot_id: bot,
        channel_id: Some(channel_id),
        platform: Some(t.platform),
        version_number: 0,
        state: json!({}),
        epoch: None,
    };
    let s = match (open, t.start_new_session) {
        (Some(s), false) => s,
        (Some(s), true) => {
            sessions::end(&mut tx, team_id, s.id, EndedBy::User).await?;
            sessions::create(&tx, new).await?
        }
        (None, _) => sessions::create(&tx, new).await?,
    };
    if !t.session_data.is_empty() {
        let values = t
            .session_data
            .iter()
            .map(|(k, v)| (k.clone(), strip_controls(v)));
        sessions::merge_state(&tx, s.id, values).await?;
    }
    let job = NewJob::<BotSend>::new(BotSendPayload {
        from_event: false,
        session_id: s.id,
        prompt_text: t.prompt_text,
        message_text: t.message_text,
    })
    .team(team_id)
    .session(s.id);
    tx.enqueue(job).await?;
    tx.commit().await?;
    let tm = team::Entity::find_by_id(team_id.0)
        .one(db)
        .await?
        .ok_or_else(|| Error::internal("team vanished"))?;
    Ok(Triggered {
        session_external_id: s.external_id,
        team_name: tm.name,
        team_slug: tm.slug,
        channel: t.platform,
    })
}
