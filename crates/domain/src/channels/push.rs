//! Push channels (Telegram, WhatsApp): the platform calls our webhook and we
//! answer by calling the platform. Every such channel takes its inbound
//! messages through [`accept`], one path with the stages of the original
//! (spec §3.4) in its order:
//!
//! 1. the event is taken once (by the platform's message id);
//! 2. participant validation: the allowlist ([`crate::onboarding`]) tells a
//!    participant it keeps out so, and stores nothing of them;
//! 3. channel disabled: nothing is stored, the disabled message (when the
//!    channel has one) is sent;
//! 4. participant resolution (identifiers normalised per platform), and a
//!    participant who blocked the bot and writes again is unblocked;
//! 5. session resolution: the open session, or a new one; `/reset` ends it
//!    (by the user, raising `conversation_end:user`) and starts another;
//! 6. message type validation: what the channel cannot take is answered with
//!    a short apology naming it;
//! 7. the human message persisted with its turn enqueued, in the event's
//!    transaction (consent and the seed message apply first).
//!
//! The pipeline, the reply's formatting, the send and its error handling run
//! in the `channel.turn` job; delivery goes through the channel's platform.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use store::entity::channel;
use uuid::Uuid;

use super::Platform;
use crate::channels;
use crate::conn::Reads;
use crate::ids::{ChannelId, ChatbotId, TeamId};
use crate::jobs::{
    ChannelInput, ChannelNotice, ChannelNoticePayload, ChannelTurn, ChannelTurnPayload,
    InboundMedia, NewJob,
};
use crate::onboarding::{self, ConsentStep};
use crate::participants::{self, data as pdata};
use crate::sessions::{self, EndedBy, NewSession, SessionStatus};
use crate::{Domain, Error, Result, turns};

/// A chatbot's channel on a push platform.
#[derive(Debug, Clone)]
pub struct PushChannel {
    pub row_id: i64,
    pub id: Uuid,
    pub team_id: TeamId,
    /// The chatbot family (its working version row).
    pub chatbot_row_id: i64,
    pub platform: Platform,
    pub name: String,
    pub enabled: bool,
    pub disabled_message: Option<String>,
    /// The team's messaging provider the channel sends with (WhatsApp).
    pub messaging_provider_id: Option<i64>,
    /// Where the platform routes to it (Meta's `phone_number_id`, a number).
    pub address: Option<String>,
    /// Non-secret settings (the bot's name, the number…).
    pub config: Value,
    pub(super) secret_hash: Option<String>,
    pub(super) sealed_secret: Option<String>,
}

/// What a push channel carries (spec §3.3), as the stages read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Files (and voice notes) participants send can be fetched.
    pub files_in: bool,
    /// Replies can be voice notes.
    pub voice_replies: bool,
    /// Files a reply carries can be sent.
    pub files_out: bool,
}

impl PushChannel {
    /// What the channel carries; `public_links` says whether this instance
    /// can hand out links to its files (it knows its public URL).
    pub fn capabilities(&self, public_links: bool) -> Capabilities {
        use crate::messaging::MessagingKind;
        match (self.platform, self.provider_kind()) {
            // Twilio takes outgoing media by a public URL only.
            (Platform::Whatsapp, Some(MessagingKind::Twilio)) => Capabilities {
                files_in: true,
                voice_replies: public_links,
                files_out: public_links,
            },
            // Text messages: never spoken; files go as links in the text.
            (Platform::Sms, _) => Capabilities {
                files_in: true,
                voice_replies: false,
                files_out: false,
            },
            (Platform::Telegram | Platform::Whatsapp, _) => Capabilities {
                files_in: true,
                voice_replies: true,
                files_out: true,
            },
            _ => Capabilities {
                files_in: false,
                voice_replies: false,
                files_out: false,
            },
        }
    }

    pub fn channel_id(&self) -> ChannelId {
        ChannelId(self.row_id)
    }

    pub fn family(&self) -> ChatbotId {
        ChatbotId(self.chatbot_row_id)
    }
}

pub(super) fn from_row(m: channel::Model) -> Result<PushChannel> {
    Ok(PushChannel {
        row_id: m.id,
        id: m.public_id,
        team_id: TeamId(m.team_id),
        chatbot_row_id: m
            .chatbot_id
            .ok_or_else(|| Error::internal("a push channel without a chatbot"))?,
        platform: m
            .platform
            .parse()
            .map_err(|e| Error::internal_from("a stored channel platform", e))?,
        name: m.name,
        enabled: m.enabled,
        disabled_message: m.disabled_message,
        messaging_provider_id: m.messaging_provider_id,
        address: m.address,
        config: m.config,
        secret_hash: m.key_hash,
        sealed_secret: m.secret,
    })
}

/// A channel by its row, deleted or not (a job's session may outlive it);
/// `None` for a channel that is not a push channel.
pub async fn by_row_id(db: &impl Reads, id: ChannelId) -> Result<Option<PushChannel>> {
    let Some(m) = channel::Entity::find_by_id(id.0).one(db.reader()).await? else {
        return Ok(None);
    };
    match Platform::parse(&m.platform) {
        Some(Platform::Telegram | Platform::Whatsapp | Platform::Sms) => from_row(m).map(Some),
        _ => Ok(None),
    }
}

/// Live channels of a platform at an address.
pub async fn by_address(
    db: &impl Reads,
    platform: Platform,
    address: &str,
) -> Result<Vec<PushChannel>> {
    channel::Entity::find()
        .filter(channel::Column::Platform.eq(platform))
        .filter(channel::Column::Address.eq(address))
        .filter(channel::Column::Deleted.eq(false))
        .all(db.reader())
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// One inbound message, as a webhook parsed it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The platform's id for it: redeliveries carry the same.
    pub event_id: String,
    /// Who wrote (and where the answer goes).
    pub from: String,
    pub kind: IncomingKind,
}

#[derive(Debug, Clone)]
pub enum IncomingKind {
    Text(String),
    /// A `/command`, lowercased, without the slash.
    Command(String),
    /// A file (a voice note, a photo, a document…), fetched by the job.
    Media(InboundMedia),
    /// A message kind the channel does not take yet (a sticker, a
    /// location…), answered with an apology that names it.
    Unsupported(String),
}

impl IncomingKind {
    /// Text that is a command where the platform has none (`/reset` on WhatsApp).
    pub fn text(text: String) -> Self {
        match text.trim().strip_prefix('/') {
            Some(c) if c.eq_ignore_ascii_case("reset") => IncomingKind::Command("reset".into()),
            _ => IncomingKind::Text(text),
        }
    }
}

pub const RESET_REPLY: &str = "Conversation reset";

fn unsupported_reply(kind: &str) -> String {
    format!("Sorry, {kind} messages are not supported yet. Please send your message as text.")
}

/// Takes inbound messages through the stages above: each event at most once,
/// in one transaction per event. Returns how many jobs it enqueued.
pub async fn accept(domain: &Domain, ch: &PushChannel, events: Vec<Incoming>) -> Result<usize> {
    let mut enqueued = 0;
    let (team_id, bot, channel_id) = (ch.team_id, ch.family(), ch.channel_id());
    let onboarding = match crate::versions::session_version(domain, bot).await? {
        Some(v) => onboarding::of_config(&v.config),
        None => return Err(Error::not_found("the channel's chatbot no longer exists")),
    };
    for ev in events {
        let from = ch.platform.normalize_identifier(&ev.from);
        let mut tx = domain.begin().await?;
        if !channels::first_time(&*tx, channel_id, &ev.event_id).await? {
            continue;
        }
        let notice = match onboarding::refusal(&tx, team_id, &onboarding, &from).await? {
            Some(text) => Some(text),
            None if !ch.enabled => ch.disabled_message.clone().filter(|m| !m.trim().is_empty()),
            None => None,
        };
        if notice.is_some() || !ch.enabled {
            if let Some(text) = notice {
                let notice = ChannelNoticePayload {
                    channel_id,
                    chat_id: from.clone(),
                    text,
                };
                tx.enqueue(NewJob::<ChannelNotice>::new(notice).team(team_id))
                    .await?;
                enqueued += 1;
            }
            tx.commit().await?;
            continue;
        }
        let p = participants::get_or_create(&tx, team_id, ch.platform, &from, None).await?;
        pdata::clear_blocked(&tx, p.id, bot).await?;
        let open = sessions::latest_open(&tx, team_id, p.id, bot, None).await?;
        let new_session = || NewSession {
            team_id,
            participant_id: p.id,
            chatbot_id: bot,
            channel_id: Some(channel_id),
            platform: Some(ch.platform),
            version_number: 0,
            state: json!({}),
            epoch: None,
        };
        let reply = |session_id, reply: String| {
            Some(ChannelTurnPayload {
                session_id,
                input: ChannelInput::Reply { reply },
            })
        };
        let payload = match &ev.kind {
            IncomingKind::Command(c) if c == "reset" => {
                if let Some(s) = &open {
                    sessions::end(&mut tx, team_id, s.id, EndedBy::User).await?;
                }
                let s = sessions::create(&tx, new_session()).await?;
                reply(s.id, RESET_REPLY.into())
            }
            IncomingKind::Unsupported(kind) => {
                let s = match open {
                    Some(s) => s,
                    None => sessions::create(&tx, new_session()).await?,
                };
                reply(s.id, unsupported_reply(kind))
            }
            IncomingKind::Media(media) if !ch.capabilities(false).files_in => {
                let s = match open {
                    Some(s) => s,
                    None => sessions::create(&tx, new_session()).await?,
                };
                reply(s.id, unsupported_reply(media.kind.as_str()))
            }
            IncomingKind::Media(media) => {
                let s = match open {
                    Some(s) => s,
                    None => sessions::create(&tx, new_session()).await?,
                };
                // Consent comes first, in words: a file before it is not kept.
                let consenting = onboarding.consent.is_some()
                    && matches!(s.status, SessionStatus::Setup | SessionStatus::Pending);
                if consenting {
                    match onboarding::consent_step(&tx, &s, &onboarding, "").await? {
                        ConsentStep::Asked(prompt) => reply(s.id, prompt),
                        _ => None,
                    }
                } else {
                    Some(ChannelTurnPayload {
                        session_id: s.id,
                        input: ChannelInput::Media {
                            media: media.clone(),
                        },
                    })
                }
            }
            IncomingKind::Command(_) | IncomingKind::Text(_) => {
                let text = match &ev.kind {
                    IncomingKind::Command(c) => format!("/{c}"),
                    IncomingKind::Text(t) => t.clone(),
                    IncomingKind::Media(_) | IncomingKind::Unsupported(_) => String::new(),
                };
                let opens = open.is_none();
                let (s, mid) = turns::begin_in(&tx, open, new_session(), &[], &text).await?;
                let answer = |text: String| {
                    Some(ChannelTurnPayload {
                        session_id: s.id,
                        input: ChannelInput::Message {
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
                        enqueued += 1;
                        None
                    }
                    ConsentStep::Silent => None,
                    ConsentStep::Open => match &onboarding.seed {
                        Some(seed) if opens && onboarding::is_start(&text) => {
                            onboarding::say_seed(&tx, team_id, s.id, seed).await?;
                            enqueued += 1;
                            None
                        }
                        _ => answer(text),
                    },
                }
            }
        };
        if let Some(payload) = payload {
            let session = payload.session_id;
            tx.enqueue(
                NewJob::<ChannelTurn>::new(payload)
                    .team(team_id)
                    .session(session),
            )
            .await?;
            enqueued += 1;
        }
        tx.commit().await?;
    }
    Ok(enqueued)
}
