//! Every kind of job, with its payload and output. A stored payload keeps the
//! field names the first release wrote, so queued jobs survive an upgrade.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JobKind;
use crate::ids::{ChannelId, MessageId, ScheduleId, SessionId};

/// Does nothing: checks that workers run (and serves the queue's tests).
pub struct Ping;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    pub pong: bool,
}

impl JobKind for Ping {
    const KIND: &'static str = "ping";
    type Payload = Value;
    type Output = Pong;
}

/// The turn of a chat-widget message the API persisted (`/api/chat/…/message/`).
pub struct ChatTurn;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTurnPayload {
    pub session_id: SessionId,
    /// The stored human message; `None` with a `refusal`.
    #[serde(default)]
    pub message_id: Option<MessageId>,
    pub text: String,
    /// A version chosen by a team member; `None` runs the session's own.
    #[serde(default)]
    pub version: Option<i32>,
    /// Stored in the session state as `remote_context` before the turn runs.
    #[serde(default)]
    pub context: Option<Value>,
    /// The answer instead of a turn: the allowlist keeps the participant out
    /// (their message was not stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTurnOutput {
    pub response: String,
    pub message_id: Option<MessageId>,
}

impl JobKind for ChatTurn {
    const KIND: &'static str = "chat.turn";
    const MAX_ATTEMPTS: i32 = 3;
    type Payload = ChatTurnPayload;
    type Output = ChatTurnOutput;
}

/// `trigger_bot`: the bot writes (or takes verbatim) a message and delivers it.
pub struct BotSend;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotSendPayload {
    pub session_id: SessionId,
    /// Written for an event trigger: the message raises no `new_bot_message`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_event: bool,
    #[serde(default)]
    pub prompt_text: Option<String>,
    #[serde(default)]
    pub message_text: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub delivered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// Why nothing was sent, when the job had nothing left to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl JobKind for BotSend {
    const KIND: &'static str = "bot.send";
    const MAX_ATTEMPTS: i32 = 3;
    type Payload = BotSendPayload;
    type Output = Delivered;
}

/// One firing of an event trigger (see `event_triggers`).
pub struct EventFire;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFirePayload {
    pub session_id: SessionId,
    /// The version row whose configuration holds the trigger.
    pub chatbot_row: crate::ids::ChatbotId,
    /// The trigger's place in that configuration's `events`.
    pub trigger: usize,
    /// The trigger's event, as written (`conversation_end:user`).
    pub on: String,
    pub action: crate::event_triggers::Action,
    /// What it fired about (a message id, `start`, `joined`, `end`).
    pub reference: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventFired {
    /// What the action did, for the events log.
    pub done: String,
}

impl JobKind for EventFire {
    const KIND: &'static str = "event.fire";
    type Payload = EventFirePayload;
    type Output = EventFired;
}

/// An inbound message on a push channel (Telegram, WhatsApp), persisted by
/// the webhook: its turn, then the reply sent on the channel.
pub struct ChannelTurn;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelTurnPayload {
    pub session_id: SessionId,
    #[serde(flatten)]
    pub input: ChannelInput,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChannelInput {
    /// A message for the pipeline.
    Message { message_id: MessageId, text: String },
    /// A fixed answer (a reset, an unsupported message kind).
    Reply { reply: String },
    /// A file the participant sent: the job downloads and stores it,
    /// transcribes a voice note, then persists the message and runs the turn.
    Media { media: InboundMedia },
}

crate::text_enum::text_enum!(
    /// What kind of file a participant sent.
    pub enum MediaKind {
        Voice = "voice",
        Audio = "audio",
        Image = "image",
        Document = "document",
        Video = "video",
    }
);

/// A file in an inbound message, as the platform names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMedia {
    pub kind: MediaKind,
    /// What the platform's API downloads it by.
    pub reference: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub file_name: Option<String>,
    /// The text sent with it.
    #[serde(default)]
    pub caption: Option<String>,
}

impl JobKind for ChannelTurn {
    const KIND: &'static str = "channel.turn";
    /// What the first release called it, when only Telegram pushed: queued
    /// jobs of that name run as this kind.
    const FORMERLY: Option<&'static str> = Some("telegram.turn");
    const MAX_ATTEMPTS: i32 = 3;
    type Payload = ChannelTurnPayload;
    type Output = Delivered;
}

/// A message to someone on a push channel who has no session: what the
/// allowlist tells a participant it keeps out, or a disabled channel's
/// message (nothing else of them is stored).
pub struct ChannelNotice;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelNoticePayload {
    pub channel_id: ChannelId,
    pub chat_id: String,
    pub text: String,
}

impl JobKind for ChannelNotice {
    const KIND: &'static str = "channel.notice";
    const FORMERLY: Option<&'static str> = Some("telegram.notice");
    const MAX_ATTEMPTS: i32 = 3;
    type Payload = ChannelNoticePayload;
    type Output = Delivered;
}

/// One firing of a schedule, enqueued by the scheduler's tick.
pub struct ScheduleFire;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleFirePayload {
    pub schedule_id: ScheduleId,
    /// 1 for the first firing: with the schedule id, the firing's identity.
    pub firing: i64,
    /// The due time the tick saw; the next occurrence follows it.
    pub due_at: DateTime<Utc>,
}

impl JobKind for ScheduleFire {
    const KIND: &'static str = "schedule.fire";
    const MAX_ATTEMPTS: i32 = 3;
    type Payload = ScheduleFirePayload;
    type Output = Delivered;
}

/// An email a pipeline's `send_email` node rendered, sent over SMTP.
pub struct EmailSend;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailPayload {
    /// Checked addresses.
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailSent {
    pub sent: bool,
    pub recipients: usize,
}

impl JobKind for EmailSend {
    const KIND: &'static str = "email.send";
    const MAX_ATTEMPTS: i32 = 5;
    type Payload = EmailPayload;
    type Output = EmailSent;
}

/// Every kind, for registries that must cover them all.
pub const ALL_KINDS: &[&str] = &[
    Ping::KIND,
    ChatTurn::KIND,
    BotSend::KIND,
    ChannelTurn::KIND,
    ChannelNotice::KIND,
    ScheduleFire::KIND,
    EmailSend::KIND,
    EventFire::KIND,
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_read_what_the_first_release_wrote() {
        let p: ChatTurnPayload = serde_json::from_value(
            json!({"session_id": 3, "message_id": 9, "text": "hi", "version": null, "context": null}),
        )
        .unwrap();
        assert_eq!(p.session_id, SessionId(3));
        let t: ChannelTurnPayload =
            serde_json::from_value(json!({"session_id": 1, "message_id": 2, "text": "/start"}))
                .unwrap();
        assert_eq!(
            t.input,
            ChannelInput::Message {
                message_id: MessageId(2),
                text: "/start".into()
            }
        );
        let r: ChannelTurnPayload =
            serde_json::from_value(json!({"session_id": 1, "reply": "Conversation reset"}))
                .unwrap();
        assert!(matches!(r.input, ChannelInput::Reply { .. }));
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"session_id": 1, "reply": "Conversation reset"})
        );
    }

    #[test]
    fn kinds_are_unique() {
        let mut k = ALL_KINDS.to_vec();
        k.sort_unstable();
        k.dedup();
        assert_eq!(k.len(), ALL_KINDS.len());
    }
}
