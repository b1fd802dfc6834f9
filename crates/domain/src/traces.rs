//! What a turn's trace records of each pipeline node that ran, and the
//! traces of a session as `GET /api/sessions/{id}/traces/` lists them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use store::entity::{message, trace};

use crate::Result;
use crate::conn::Reads;
use crate::ids::SessionId;
use crate::pricing::ServiceKind;
use crate::text_enum::text_enum;

text_enum!(
    /// How a turn ended, as its trace records it.
    pub enum TraceStatus {
        Success = "success",
        Error = "error",
    }
);

/// Tokens used by one call, as the provider reported them.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageItem {
    pub provider_kind: String,
    pub model: String,
    pub kind: ServiceKind,
    pub quantity: i64,
}

/// One node that ran in a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Span {
    pub node_id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The keyword a router chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default)]
    pub llm_calls: i32,
    #[serde(default)]
    pub input_tokens: i64,
    #[serde(default)]
    pub output_tokens: i64,
    /// USD, in 1e-8 units (filled in when the turn is recorded).
    #[serde(default)]
    pub cost_e8: i64,
    /// The calls' usage, priced when the turn is recorded (not stored).
    #[serde(skip)]
    pub usage: Vec<UsageItem>,
    /// The tools the node's model called, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallTrace>,
    /// What a code node printed (capped by the sandbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_output: Option<String>,
}

/// One tool call of an LLM node: what the model asked and what it was told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ToolCallTrace {
    pub name: String,
    pub arguments: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// The most of a tool's answer a trace keeps (the model got all of it).
pub const MAX_TRACED_TOOL_TEXT: usize = 16 * 1024;

/// A tool's answer as a trace keeps it: whole when short, else its first
/// [`MAX_TRACED_TOOL_TEXT`] bytes (on a character boundary) and how much was left out.
pub fn traced_text(text: &str) -> String {
    if text.len() <= MAX_TRACED_TOOL_TEXT {
        return text.to_string();
    }
    let mut end = MAX_TRACED_TOOL_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes not kept in the trace)",
        &text[..end],
        text.len() - end
    )
}

/// A message a trace points at.
#[derive(Debug, Clone, PartialEq)]
pub struct TracedMessage {
    pub content: String,
    pub created_at: DateTime<Utc>,
}

/// A trace of a session: one turn (or bot-initiated message).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionTrace {
    pub id: i64,
    pub status: TraceStatus,
    pub version_number: i32,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub llm_calls: i32,
    pub created_at: DateTime<Utc>,
    pub input: Option<TracedMessage>,
    pub output: Option<TracedMessage>,
    pub spans: Vec<Span>,
}

/// Every trace of a session, oldest first, with the messages they point at.
pub async fn of_session(db: &impl Reads, session_id: SessionId) -> Result<Vec<SessionTrace>> {
    let db = db.reader();
    let rows = trace::Entity::find()
        .filter(trace::Column::SessionId.eq(session_id))
        .order_by_asc(trace::Column::Id)
        .all(db)
        .await?;
    let ids: Vec<i64> = rows
        .iter()
        .flat_map(|t| [t.input_message_id, t.output_message_id])
        .flatten()
        .collect();
    let messages: HashMap<i64, TracedMessage> = message::Entity::find()
        .filter(message::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            (
                m.id,
                TracedMessage {
                    content: m.content,
                    created_at: m.created_at,
                },
            )
        })
        .collect();
    rows.into_iter()
        .map(|t| {
            let spans = match t.spans {
                Some(v) => serde_json::from_value(v)
                    .map_err(|e| crate::Error::internal_from("reading a trace's spans", e))?,
                None => Vec::new(),
            };
            Ok(SessionTrace {
                id: t.id,
                status: crate::text_enum::stored(&t.status)?,
                version_number: t.version_number,
                duration_ms: t.duration_ms,
                error: t.error,
                llm_calls: t.llm_calls,
                created_at: t.created_at,
                input: t.input_message_id.and_then(|i| messages.get(&i).cloned()),
                output: t.output_message_id.and_then(|i| messages.get(&i).cloned()),
                spans,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tool_answers_are_cut_in_the_trace_only() {
        assert_eq!(traced_text("short"), "short");
        let long = "é".repeat(MAX_TRACED_TOOL_TEXT);
        let kept = traced_text(&long);
        assert!(kept.len() < MAX_TRACED_TOOL_TEXT + 60, "{}", kept.len());
        assert!(
            kept.ends_with("more bytes not kept in the trace)"),
            "{kept}"
        );
        assert!(kept.starts_with('é'));
    }
}
