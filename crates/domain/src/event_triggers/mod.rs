//! A chatbot's event triggers: `events:` in its configuration (so versioned
//! and snapshotted by publish like the pipeline), each an event kind and an
//! action. When an event happens, the transaction that makes it happen
//! enqueues one `event.fire` job per matching active trigger, keyed by
//! (version, trigger, session, reference) so each firing happens once
//! whatever the number of processes, and the engine runs the action.
//!
//! Which version's triggers: for a turn's messages, the version that ran
//! the turn; for a session's start and end, the version a bot-initiated
//! message would use (the published one, else the working version).
//!
//! A bot message written by a `prompt_bot` action raises no
//! `new_bot_message` (or a trigger could answer itself for ever).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod log;

pub use log::{Firing, log};

use crate::events::EndedBy;
use crate::ids::{ChatbotId, SessionId, TeamId};
use crate::jobs::{EventFire, EventFirePayload, NewJob};
use crate::text_enum::text_enum;
use crate::{Error, Result, Tx};

text_enum!(
    /// What a static trigger reacts to (the original's trigger names).
    pub enum EventKind {
        ConversationStart = "conversation_start",
        /// The participant's first session with this chatbot.
        ParticipantJoined = "participant_joined",
        NewHumanMessage = "new_human_message",
        NewBotMessage = "new_bot_message",
        /// A timeout trigger's last firing.
        LastTimeout = "last_timeout",
        ConversationEnd = "conversation_end",
    }
);

/// A trigger's event: a kind, and for `conversation_end` optionally who ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct On {
    pub kind: EventKind,
    pub ended_by: Option<EndedBy>,
}

impl On {
    fn parse(text: &str) -> std::result::Result<On, String> {
        let (kind, by) = match text.split_once(':') {
            Some((k, b)) => (k, Some(b)),
            None => (text, None),
        };
        let kind = EventKind::parse(kind.trim()).ok_or_else(|| {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("on: unknown event {text:?} (one of: {})", known.join(", "))
        })?;
        let ended_by = match by {
            None => None,
            Some(b) if kind == EventKind::ConversationEnd => {
                Some(EndedBy::parse(b.trim()).ok_or_else(|| {
                    let known: Vec<&str> = EndedBy::ALL.iter().map(|k| k.as_str()).collect();
                    format!(
                        "on: conversation_end:{b} names no one who ends a conversation (one of: {})",
                        known.join(", ")
                    )
                })?)
            }
            Some(_) => return Err(format!("on: only conversation_end takes ':who' ({text:?})")),
        };
        Ok(On { kind, ended_by })
    }

    pub fn text(&self) -> String {
        match self.ended_by {
            Some(b) => format!("{}:{}", self.kind, b),
            None => self.kind.to_string(),
        }
    }

    fn matches(&self, kind: EventKind, ended_by: Option<EndedBy>) -> bool {
        self.kind == kind && (self.ended_by.is_none() || self.ended_by == ended_by)
    }
}

/// What a trigger does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Records the firing (and `message`) in the events log.
    Log {
        #[serde(default)]
        message: String,
    },
    /// Ends the session (`ended_by = event`).
    EndConversation,
    /// The chatbot's LLM writes a message from `instruction` (with the
    /// participant's data and the recent history) and it is delivered on the
    /// session's channel.
    PromptBot { instruction: String },
    /// Schedules a message: once after `delay_seconds`, or `every` N
    /// `period`s (`minutes`, `hours`, `days`, `weeks`), `repetitions` times (0: for ever).
    ScheduleMessage {
        name: String,
        prompt: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_seconds: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        period: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repetitions: Option<i32>,
    },
    /// Sets keys of the participant's data for this chatbot.
    UpdateParticipantData { data: Map<String, Value> },
    /// Runs a pipeline on the conversation: another chatbot's (its
    /// published version, by id) or one written here (`pipeline`). Its
    /// output is not added to the conversation; its trace and its state
    /// changes (participant data, session state, tags) are kept.
    StartPipeline {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chatbot: Option<uuid::Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pipeline: Option<Value>,
        #[serde(default)]
        input: PipelineInput,
    },
}

/// What a `start_pipeline` action feeds the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineInput {
    /// The whole conversation, one `role: text` line per message.
    FullHistory,
    /// The conversation from its last summary on.
    SinceSummary,
    /// The newest message.
    #[default]
    LastMessage,
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Log { .. } => "log",
            Action::EndConversation => "end_conversation",
            Action::PromptBot { .. } => "prompt_bot",
            Action::ScheduleMessage { .. } => "schedule_message",
            Action::UpdateParticipantData { .. } => "update_participant_data",
            Action::StartPipeline { .. } => "start_pipeline",
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        match self {
            Action::PromptBot { instruction } if instruction.trim().is_empty() => {
                Err("action.instruction: this field is required".into())
            }
            Action::ScheduleMessage {
                name,
                prompt,
                delay_seconds,
                every,
                period,
                repetitions,
            } => {
                if name.trim().is_empty() || prompt.trim().is_empty() {
                    return Err("action: schedule_message needs a name and a prompt".into());
                }
                match (delay_seconds, every, period) {
                    (Some(d), None, None) if *d >= 0 => {}
                    (None, Some(e), Some(p)) if *e > 0 => {
                        period_seconds(p)?;
                    }
                    _ => {
                        return Err("action: schedule_message takes delay_seconds (>= 0), or every (> 0) and period".into());
                    }
                }
                if repetitions.is_some_and(|r| r < 0) {
                    return Err("action.repetitions: must be 0 or more".into());
                }
                Ok(())
            }
            Action::UpdateParticipantData { data } if data.is_empty() => {
                Err("action.data: set at least one key".into())
            }
            Action::StartPipeline {
                chatbot, pipeline, ..
            } => match (chatbot, pipeline) {
                (Some(_), None) => Ok(()),
                (None, Some(p)) => {
                    crate::pipeline::Pipeline::from_config(&serde_json::json!({ "pipeline": p }))
                        .and_then(|p| match p {
                            Some(p) => p.validate().map(|_| ()),
                            None => Err(Error::BadRequest("the pipeline is empty".into())),
                        })
                        .map_err(|e| format!("action.pipeline: {e}"))
                }
                _ => Err("action: start_pipeline takes a chatbot or a pipeline".into()),
            },
            _ => Ok(()),
        }
    }
}

/// Seconds in a schedule period.
pub fn period_seconds(period: &str) -> std::result::Result<i64, String> {
    match period {
        "minutes" => Ok(60),
        "hours" => Ok(3_600),
        "days" => Ok(86_400),
        "weeks" => Ok(604_800),
        other => Err(format!(
            "action.period: unknown period {other:?} (minutes, hours, days, weeks)"
        )),
    }
}

/// One trigger as the configuration writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerSpec {
    #[serde(default)]
    on: Option<String>,
    #[serde(default)]
    timeout: Option<Timeout>,
    action: Action,
    #[serde(default = "active_by_default")]
    active: bool,
}

fn active_by_default() -> bool {
    true
}

/// A timeout trigger's timing: `seconds` after the participant's last
/// message, then every `seconds` again, `times` times in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeout {
    pub seconds: i64,
    #[serde(default = "once")]
    pub times: i32,
}

fn once() -> i32 {
    1
}

/// The most a timeout trigger may repeat.
pub const MAX_TIMEOUT_TIMES: i32 = 100;

/// When a trigger fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    Event(On),
    Timeout(Timeout),
}

impl When {
    pub fn text(&self) -> String {
        match self {
            When::Event(on) => on.text(),
            When::Timeout(t) => format!("timeout:{}s", t.seconds),
        }
    }
}

/// A trigger of a chatbot.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub when: When,
    pub action: Action,
    pub active: bool,
}

/// The triggers of a configuration, checked; the error names the trigger.
pub fn parse(config: &Value) -> std::result::Result<Vec<Trigger>, String> {
    let Some(events) = config.get("events") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = events else {
        return Err("events: must be a list".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |e: String| format!("events[{i}]: {e}");
            let spec: TriggerSpec =
                serde_path_to_error::deserialize(item.clone()).map_err(|e| at(e.to_string()))?;
            let when = match (spec.on.as_deref(), spec.timeout) {
                (Some(on), None) => When::Event(On::parse(on).map_err(at)?),
                (None, Some(t)) => {
                    if t.seconds < 1 {
                        return Err(at("timeout.seconds: must be at least 1".into()));
                    }
                    if !(1..=MAX_TIMEOUT_TIMES).contains(&t.times) {
                        return Err(at(format!(
                            "timeout.times: must be between 1 and {MAX_TIMEOUT_TIMES}"
                        )));
                    }
                    When::Timeout(t)
                }
                (Some(_), Some(_)) => {
                    return Err(at("a trigger has either on: or timeout:, not both".into()));
                }
                (None, None) => return Err(at("on: (or timeout:) is required".into())),
            };
            spec.action.check().map_err(at)?;
            Ok(Trigger {
                when,
                action: spec.action,
                active: spec.active,
            })
        })
        .collect()
}

/// Refuses a configuration whose triggers do not parse.
pub fn validate(config: &Value) -> Result<()> {
    parse(config)
        .map(|_| ())
        .map_err(|e| Error::field("config", e))
}

/// The triggers of a stored configuration. Stored configurations were
/// validated on save; one that no longer parses (a hand-edited row) has no
/// triggers rather than failing the turn.
pub fn of_config(config: &Value) -> Vec<Trigger> {
    parse(config).unwrap_or_default()
}

/// The active triggers for an event, with their index.
pub fn matching(
    triggers: &[Trigger],
    kind: EventKind,
    ended_by: Option<EndedBy>,
) -> impl Iterator<Item = (usize, &Trigger)> {
    triggers.iter().enumerate().filter(move |(_, t)| {
        t.active && matches!(t.when, When::Event(on) if on.matches(kind, ended_by))
    })
}

/// The active timeout triggers, with their index.
pub fn timeouts(triggers: &[Trigger]) -> impl Iterator<Item = (usize, Timeout, &Action)> {
    triggers
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t.when {
            When::Timeout(w) if t.active => Some((i, w, &t.action)),
            _ => None,
        })
}

/// An event in a session, for [`fire`].
pub struct Happened<'a> {
    pub team_id: TeamId,
    pub session_id: SessionId,
    /// The version row whose configuration holds the triggers.
    pub chatbot_row: ChatbotId,
    pub triggers: &'a [Trigger],
    pub kind: EventKind,
    pub ended_by: Option<EndedBy>,
    /// What the firing is about (a message id, or the session's start or end):
    /// one firing per trigger and reference.
    pub reference: String,
}

/// Enqueues one `event.fire` job per matching trigger, in `tx`.
pub async fn fire(tx: &Tx<'_>, e: Happened<'_>) -> Result<()> {
    for (index, t) in matching(e.triggers, e.kind, e.ended_by) {
        let key = format!(
            "event:{}:{index}:{}:{}",
            e.chatbot_row, e.session_id, e.reference
        );
        tx.enqueue(
            NewJob::<EventFire>::new(EventFirePayload {
                session_id: e.session_id,
                chatbot_row: e.chatbot_row,
                trigger: index,
                on: t.when.text(),
                action: t.action.clone(),
                reference: e.reference.clone(),
            })
            .team(e.team_id)
            .session(e.session_id)
            .idempotency_key(key),
        )
        .await?;
    }
    Ok(())
}

/// The triggers a session's own events (start, end) fire, and where they live.
pub struct SessionTriggers {
    /// The version row whose configuration holds them.
    pub row: ChatbotId,
    /// The chatbot family (its working version's row).
    pub family: ChatbotId,
    pub triggers: Vec<Trigger>,
}

/// The triggers of the version a session's own events use
/// ([`crate::versions::session_version`]).
pub async fn session_triggers(
    tx: &Tx<'_>,
    chatbot_row: ChatbotId,
) -> Result<Option<SessionTriggers>> {
    Ok(crate::versions::session_version(tx, chatbot_row)
        .await?
        .as_ref()
        .map(SessionTriggers::of))
}

impl SessionTriggers {
    pub(crate) fn of(v: &crate::versions::SessionVersion) -> Self {
        SessionTriggers {
            row: v.row,
            family: v.family,
            triggers: of_config(&v.config),
        }
    }
}

/// The family (working version) of a chatbot row.
pub async fn family_of(db: &impl crate::conn::Reads, row: ChatbotId) -> Result<ChatbotId> {
    use sea_orm::EntityTrait;
    let found = store::entity::chatbot::Entity::find_by_id(row.0)
        .one(db.reader())
        .await?
        .ok_or_else(|| Error::not_found("the chatbot no longer exists"))?;
    Ok(ChatbotId(found.working_version_id.unwrap_or(found.id)))
}

/// The rows of a chatbot family: its working version and its snapshots.
pub fn family_rows(family: ChatbotId) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::Query;
    use sea_orm::{ColumnTrait, Condition};
    use store::entity::chatbot;
    Query::select()
        .column(chatbot::Column::Id)
        .from(chatbot::Entity)
        .cond_where(
            Condition::any()
                .add(chatbot::Column::Id.eq(family.0))
                .add(chatbot::Column::WorkingVersionId.eq(family.0)),
        )
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn triggers_parse_and_match() {
        let config = json!({"events": [
            {"on": "new_human_message", "action": {"type": "update_participant_data", "data": {"seen": true}}},
            {"on": "conversation_end:user", "action": {"type": "log", "message": "bye"}},
            {"on": "conversation_end", "action": {"type": "end_conversation"}, "active": false},
            {"on": "participant_joined", "action": {"type": "schedule_message", "name": "Check in", "prompt": "Ask how it goes", "every": 1, "period": "days", "repetitions": 3}},
        ]});
        let t = parse(&config).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(matching(&t, EventKind::NewHumanMessage, None).count(), 1);
        assert_eq!(
            matching(&t, EventKind::ConversationEnd, Some(EndedBy::User)).count(),
            1
        );
        assert_eq!(
            matching(&t, EventKind::ConversationEnd, Some(EndedBy::Bot)).count(),
            0
        );
        assert_eq!(t[1].when.text(), "conversation_end:user");
    }

    #[test]
    fn bad_triggers_name_their_place() {
        for (events, expected) in [
            (
                json!([{"on": "new_message", "action": {"type": "log"}}]),
                "events[0]: on: unknown event",
            ),
            (
                json!([{"on": "new_human_message:user", "action": {"type": "log"}}]),
                "only conversation_end",
            ),
            (
                json!([{"on": "conversation_end:robot", "action": {"type": "log"}}]),
                "names no one",
            ),
            (
                json!([{"on": "new_human_message", "action": {"type": "dance"}}]),
                "events[0]: action",
            ),
            (
                json!([{"on": "new_human_message", "action": {"type": "log", "extra": 1}}]),
                "unknown field",
            ),
            (
                json!([{"action": {"type": "log"}}]),
                "on: (or timeout:) is required",
            ),
            (
                json!([{"on": "new_human_message", "timeout": {"seconds": 5}, "action": {"type": "log"}}]),
                "not both",
            ),
            (
                json!([{"timeout": {"seconds": 0}, "action": {"type": "log"}}]),
                "at least 1",
            ),
            (
                json!([{"timeout": {"seconds": 5, "times": 0}, "action": {"type": "log"}}]),
                "between 1 and 100",
            ),
            (
                json!([{"on": "new_human_message", "action": {"type": "prompt_bot", "instruction": " "}}]),
                "instruction",
            ),
            (
                json!([{"on": "new_human_message", "action": {"type": "schedule_message", "name": "a", "prompt": "b"}}]),
                "delay_seconds",
            ),
            (
                json!([{"on": "new_human_message", "action": {"type": "schedule_message", "name": "a", "prompt": "b", "every": 2, "period": "fortnights"}}]),
                "unknown period",
            ),
            (
                json!([{"on": "new_human_message", "action": {"type": "start_pipeline"}}]),
                "takes a chatbot or a pipeline",
            ),
            (
                json!([{"on": "new_human_message", "action": {"type": "start_pipeline", "pipeline": {"nodes": [], "edges": []}}}]),
                "action.pipeline:",
            ),
            (
                json!([{"on": "new_human_message", "action": {"type": "start_pipeline", "pipeline": {"nodes": []}, "input": "everything"}}]),
                "unknown variant",
            ),
            (json!({"on": "x"}), "must be a list"),
        ] {
            let e = parse(&json!({"events": events})).unwrap_err();
            assert!(e.contains(expected), "{events}: {e}");
        }
    }
}
