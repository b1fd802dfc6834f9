//! Telegram channels: the bot token sealed at rest, the webhook secret stored
//! as a hash, and inbound updates accepted once.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::entity::{channel, chatbot};
use uuid::Uuid;

use super::Platform;
use crate::channels;
use crate::conn::{Reads, Writes};
use crate::ids::{ChannelId, ChatbotId, TeamId};
use crate::jobs::{
    NewJob, TelegramInput, TelegramNotice, TelegramNoticePayload, TelegramTurn, TelegramTurnPayload,
};
use crate::onboarding::{self, ConsentStep};
use crate::participants::{self, data as pdata};
use crate::secrets::SecretBox;
use crate::sessions::{self, EndedBy, NewSession};
use crate::{Domain, Error, Result, turns};

pub const PLATFORM: Platform = Platform::Telegram;

#[derive(Debug, Clone)]
pub struct TelegramChannel {
    pub row_id: i64,
    pub id: Uuid,
    pub team_id: TeamId,
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
                .ok_or_else(|| Error::internal("telegram channel without a token"))?,
        )
    }
}

fn from_row(m: channel::Model) -> TelegramChannel {
    TelegramChannel {
        row_id: m.id,
        id: m.public_id,
        team_id: TeamId(m.team_id),
        chatbot_row_id: m.chatbot_id.unwrap_or_default(),
        enabled: m.enabled,
        disabled_message: m.disabled_message,
        secret_hash: m.key_hash,
        sealed_token: m.secret,
    }
}

/// Records a Telegram channel for a chatbot (the token was checked with getMe).
pub async fn add(
    db: &impl Writes,
    secrets: &SecretBox,
    chatbot_id: Uuid,
    token: &str,
    webhook_secret: &str,
    bot: Value,
) -> Result<TelegramChannel> {
    let db = db.writer();
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
        platform: Set(PLATFORM.as_str().into()),
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

pub async fn by_public_id(db: &impl Reads, id: Uuid) -> Result<Option<TelegramChannel>> {
    let db = db.reader();
    Ok(channel::Entity::find()
        .filter(channel::Column::PublicId.eq(id))
        .filter(channel::Column::Platform.eq(PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?
        .map(from_row))
}

pub async fn by_row_id(db: &impl Reads, id: i64) -> Result<Option<TelegramChannel>> {
    let db = db.reader();
    Ok(channel::Entity::find_by_id(id)
        .filter(channel::Column::Platform.eq(PLATFORM))
        .one(db)
        .await?
        .map(from_row))
}

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
/// and its turn enqueued in one transaction per update. `/reset` ends the open
/// session (by the user) and starts a new one. The chatbot's onboarding
/// ([`crate::onboarding`]) applies: a participant the allowlist keeps out is
/// told so and nothing of them is stored; consent is asked before the
/// conversation; `/start` opening a session is answered by the seed message.
pub async fn accept(domain: &Domain, ch: &TelegramChannel, updates: Vec<Update>) -> Result<usize> {
    let mut accepted = 0;
    if !ch.enabled {
        return Ok(0);
    }
    let (team_id, bot, channel_id) = (
        ch.team_id,
        ChatbotId(ch.chatbot_row_id),
        ChannelId(ch.row_id),
    );
    let onboarding = match crate::versions::session_version(domain, bot).await? {
        Some(v) => onboarding::of_config(&v.config),
        None => return Err(Error::not_found("the channel's chatbot no longer exists")),
    };
    for ev in updates {
        let mut tx = domain.begin().await?;
        if !channels::first_time(&*tx, channel_id, &ev.update_id).await? {
            continue;
        }
        if let Some(text) = onboarding::refusal(&tx, team_id, &onboarding, &ev.chat_id).await? {
            let notice = TelegramNoticePayload {
                channel_id,
                chat_id: ev.chat_id.clone(),
                text,
            };
            tx.enqueue(NewJob::<TelegramNotice>::new(notice).team(team_id))
                .await?;
            tx.commit().await?;
            accepted += 1;
            continue;
        }
        let p = participants::get_or_create(&tx, team_id, Platform::Telegram, &ev.chat_id, None)
            .await?;
        pdata::clear_blocked(&tx, p.id, bot).await?;
        let open = sessions::latest_open(&tx, team_id, p.id, bot, None).await?;
        let new_session = || NewSession {
            team_id,
            participant_id: p.id,
            chatbot_id: bot,
            channel_id: Some(channel_id),
            platform: Some(Platform::Telegram),
            version_number: 0,
            state: json!({}),
        };
        let reply = |session_id, reply: String| {
            Some(TelegramTurnPayload {
                session_id,
                input: TelegramInput::Reply { reply },
            })
        };
        let payload = match &ev.kind {
            UpdateKind::Command(c) if c == "reset" => {
                if let Some(s) = &open {
                    sessions::end(&mut tx, team_id, s.id, EndedBy::User).await?;
                }
                let s = sessions::create(&tx, new_session()).await?;
                reply(s.id, RESET_REPLY.into())
            }
            UpdateKind::Unsupported(kind) => {
                let s = match open {
                    Some(s) => s,
                    None => sessions::create(&tx, new_session()).await?,
                };
                reply(s.id, unsupported_reply(kind))
            }
            UpdateKind::Command(_) | UpdateKind::Text(_) => {
                let text = match &ev.kind {
                    UpdateKind::Command(c) => format!("/{c}"),
                    UpdateKind::Text(t) => t.clone(),
                    UpdateKind::Unsupported(_) => String::new(),
                };
                let opens = open.is_none();
                let (s, mid) = turns::begin_in(&tx, open, new_session(), &[], &text).await?;
                let answer = |text: String| {
                    Some(TelegramTurnPayload {
                        session_id: s.id,
                        input: TelegramInput::Message {
                            message_id: mid,
                            text,
                        },
                    })
                };
                match onboarding::consent_step(&tx, &s, &onboarding, &text).await? {
                    ConsentStep::Asked(prompt) => reply(s.id, prompt),
                    ConsentStep::Answer(question) => answer(question),
                    ConsentStep::Seed(seed) => {
                        onboarding::say_seed(&tx, team_id, s.id, &seed).await?;
                        None
                    }
                    ConsentStep::Silent => None,
                    ConsentStep::Open => match &onboarding.seed {
                        Some(seed) if opens && onboarding::is_start(&text) => {
                            onboarding::say_seed(&tx, team_id, s.id, seed).await?;
                            None
                        }
                        _ => answer(text),
                    },
                }
            }
        };
        if let Some(payload) = payload {
            tx.enqueue(NewJob::<TelegramTurn>::new(payload).team(team_id))
                .await?;
        }
        tx.commit().await?;
        accepted += 1;
    }
    Ok(accepted)
}
