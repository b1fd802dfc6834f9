//! Telegram channels: the bot token sealed at rest, the webhook secret stored
//! as a hash, and inbound updates accepted once.

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::entity::{channel, chatbot};
use uuid::Uuid;

use crate::conversations::{self as conv, NewSession};
use crate::jobs::{self, NewJob};
use crate::secrets::SecretBox;
use crate::{Error, Result};

pub const PLATFORM: &str = "telegram";

#[derive(Debug, Clone)]
pub struct TelegramChannel {
    pub row_id: i64,
    pub id: Uuid,
    pub team_id: i64,
    pub chatbot_row_id: i64,
    pub enabled: bool,
    pub disabled_message: Option<String>,
    secret_hash: Option<String>,
    sealed_token: Option<String>,
}

impl TelegramChannel {
    /// Whether a webhook request carries this channel's secret (constant time).
    pub fn secret_matches(&self, header: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        match (&self.secret_hash, header) {
            (Some(h), Some(given)) => {
                let g = hex::encode(Sha256::digest(given.as_bytes()));
                bool::from(g.as_bytes().ct_eq(h.as_bytes()))
            }
            _ => false,
        }
    }

    pub fn token(&self, secrets: &SecretBox) -> Result<String> {
        secrets.open(
            self.sealed_token
                .as_deref()
                .ok_or_else(|| Error::Internal("telegram channel without a token".into()))?,
        )
    }
}

fn from_row(m: channel::Model) -> TelegramChannel {
    TelegramChannel {
        row_id: m.id,
        id: m.public_id,
        team_id: m.team_id,
        chatbot_row_id: m.chatbot_id.unwrap_or_default(),
        enabled: m.enabled,
        disabled_message: m.disabled_message,
        secret_hash: m.key_hash,
        sealed_token: m.secret,
    }
}

/// Records a Telegram channel for a chatbot (the token was checked with getMe).
pub async fn add<C: ConnectionTrait>(
    db: &C,
    secrets: &SecretBox,
    chatbot_id: Uuid,
    token: &str,
    webhook_secret: &str,
    bot: Value,
) -> Result<TelegramChannel> {
    let head = chatbot::Entity::find()
        .filter(chatbot::Column::PublicId.eq(chatbot_id))
        .filter(chatbot::Column::WorkingVersionId.is_null())
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("no chatbot with id {chatbot_id}")))?;
    let name = bot
        .get("username")
        .and_then(Value::as_str)
        .map_or_else(|| "Telegram".to_string(), |u| format!("@{u}"));
    let m = channel::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(head.team_id),
        chatbot_id: Set(Some(head.id)),
        platform: Set(PLATFORM.into()),
        name: Set(name),
        config: Set(json!({"bot": bot})),
        secret: Set(Some(secrets.seal(token)?)),
        enabled: Set(true),
        disabled_message: Set(None),
        deleted: Set(false),
        created_at: Set(store::now()),
        key_hash: Set(Some(hex::encode(Sha256::digest(webhook_secret.as_bytes())))),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(from_row(m))
}

pub async fn by_public_id<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<TelegramChannel>> {
    Ok(channel::Entity::find()
        .filter(channel::Column::PublicId.eq(id))
        .filter(channel::Column::Platform.eq(PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?
        .map(from_row))
}

pub async fn by_row_id<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<TelegramChannel>> {
    Ok(channel::Entity::find_by_id(id)
        .filter(channel::Column::Platform.eq(PLATFORM))
        .one(db)
        .await?
        .map(from_row))
}

/// Accepts an inbound event once: `false` when it was seen before.
pub async fn first_time<C: ConnectionTrait>(
    db: &C,
    channel_row_id: i64,
    event_id: &str,
) -> Result<bool> {
    let stmt = Query::insert()
        .into_table("inbound_events")
        .columns(["channel_id", "event_id", "created_at"])
        .values_panic([channel_row_id.into(), event_id.into(), store::now().into()])
        .on_conflict(
            OnConflict::columns(["channel_id", "event_id"])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    Ok(db.execute(&stmt).await?.rows_affected() == 1)
}

pub const TURN_JOB: &str = "telegram.turn";
pub const RESET_REPLY: &str = "Conversation reset";

/// One inbound update, as the webhook parsed it.
#[derive(Debug, Clone)]
pub struct Update {
    pub update_id: String,
    pub chat_id: String,
    pub kind: UpdateKind,
}

#[derive(Debug, Clone)]
pub enum UpdateKind {
    Text(String),
    Command(String),
    /// A message kind we do not handle yet (voice, photo…): answered with a notice.
    Unsupported(String),
}

fn unsupported_reply(kind: &str) -> String {
    format!("Sorry, {kind} messages are not supported yet. Please send your message as text.")
}

/// Accepts updates: each at most once (by `update_id`), its message persisted
/// and its turn enqueued in one transaction per update.
pub async fn accept(db: &crate::Db, ch: &TelegramChannel, updates: Vec<Update>) -> Result<usize> {
    let mut accepted = 0;
    if !ch.enabled {
        return Ok(0);
    }
    for ev in updates {
        let txn = db.write.begin().await?;
        if !first_time(&txn, ch.row_id, &ev.update_id).await? {
            continue;
        }
        let p =
            conv::participant_get_or_create(&txn, ch.team_id, PLATFORM, &ev.chat_id, None).await?;
        conv::clear_blocked(&txn, p.id, ch.chatbot_row_id).await?;
        let open = conv::latest_open_session(&txn, ch.team_id, p.id, ch.chatbot_row_id).await?;
        let new_session = || NewSession {
            team_id: ch.team_id,
            participant_id: p.id,
            chatbot_row_id: ch.chatbot_row_id,
            channel_id: Some(ch.row_id),
            platform: Some(PLATFORM.into()),
            version_number: 0,
            state: json!({}),
        };
        let payload = match &ev.kind {
            UpdateKind::Command(c) if c == "reset" => {
                if let Some(s) = &open {
                    conv::end_session(&txn, s.id, "user").await?;
                }
                let s = conv::create_session(&txn, new_session()).await?;
                json!({"session_id": s.id, "reply": RESET_REPLY})
            }
            UpdateKind::Unsupported(kind) => {
                let s = match open {
                    Some(s) => s,
                    None => conv::create_session(&txn, new_session()).await?,
                };
                json!({"session_id": s.id, "reply": unsupported_reply(kind)})
            }
            UpdateKind::Command(c) => {
                let text = format!("/{c}");
                let (s, mid) = conv::begin_turn(&txn, open, new_session(), &[], &text).await?;
                json!({"session_id": s.id, "message_id": mid, "text": text})
            }
            UpdateKind::Text(text) => {
                let (s, mid) = conv::begin_turn(&txn, open, new_session(), &[], text).await?;
                json!({"session_id": s.id, "message_id": mid, "text": text})
            }
        };
        let mut job = NewJob::new(TURN_JOB, payload);
        job.team_id = Some(ch.team_id);
        job.max_attempts = 3;
        jobs::enqueue(&txn, job).await?;
        txn.commit().await?;
        accepted += 1;
    }
    Ok(accepted)
}
