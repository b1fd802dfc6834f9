//! The original's agent tools an LLM node may call, under the original's
//! names and argument schemas (`apps/chat/agent/tools.py`, `schemas.py`).
//! A tool works on the run's state — participant data and session state —
//! so what it changes commits with the turn; errors go back to the model as
//! the tool's answer, never up as a failure of the turn.

pub mod actions;
mod calculator;
mod reminders;
mod state;

use llm::ToolSpec;
use serde_json::{Value, json};

pub use calculator::calculate;
pub use reminders::Reminders;

/// The state tools read and change during one node's run.
#[derive(Debug, Clone)]
pub struct ToolState {
    pub participant_data: Value,
    pub session_state: Value,
    pub participant_changed: bool,
    pub session_changed: bool,
    pub end_session: bool,
    /// Whose reminders the reminder tools change (none in a dry run without a participant).
    pub reminders: Option<Reminders>,
    pub schedule_changes: Vec<domain::schedules::ScheduleChange>,
}

/// Keys of session state only the platform writes (the original's
/// `RESERVED_SESSION_STATE_KEYS`).
pub const RESERVED_SESSION_KEYS: &[&str] =
    &["user_input", "outputs", "attachments", "remote_context"];

fn key_value(description: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": format!("The key in the {description}")},
            "value": {"description": "The value (text, a number, an object or a list)"},
        },
        "required": ["key", "value"],
    })
}

fn counter() -> Value {
    json!({
        "type": "object",
        "properties": {
            "counter": {"type": "string", "description": "The name of the counter to increment"},
            "value": {"type": "integer", "description": "The value to increment the counter by", "default": 1},
        },
        "required": ["counter"],
    })
}

/// What the model sees of a tool.
pub fn spec(name: &str) -> Option<ToolSpec> {
    let (description, parameters) = match name {
        "update-user-data" => ("Update user data", key_value("user data to update")),
        "append-to-participant-data" => (
            "Append a value to user data at a specific key. This will convert any existing value to a list and append the new value to the end of the list. Use this tool to track lists of items e.g. questions asked.",
            key_value("user data to append to"),
        ),
        "increment-counter" => ("Increment the value of a counter.", counter()),
        "end-session" => (
            "End the current chat session. This will mark the session as completed. New messages will result in a new session being created.",
            json!({"type": "object", "properties": {}}),
        ),
        "set-session-state" => (
            "Set a value in the session state that persists across the entire experiment session",
            key_value("session state to set"),
        ),
        "get-session-state" => (
            "Get a value from the session state that persists across the entire experiment session",
            json!({
                "type": "object",
                "properties": {"key": {"type": "string", "description": "The key in the session state to retrieve"}},
                "required": ["key"],
            }),
        ),
        "append-to-session-state" => (
            "Append a value to session state at a specific key. This will convert any existing value to a list and append the new value to the end of the list. Use this tool to track lists of items within the current session.",
            key_value("session state to append to"),
        ),
        "increment-session-state-counter" => (
            "Increment the value of a counter stored in session state.",
            counter(),
        ),
        "calculator" => (
            "Evaluates mathematical expressions and returns numerical results. Supports +, -, *, /, %, ** (or ^), functions (sqrt, sin, cos, tan, log, exp, abs, min, max, floor, round, ceil) and the constants pi and e. Use periods for decimals.",
            json!({
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "The mathematical expression to evaluate. Use periods for decimals (not commas). Maximum 200 characters."}},
                "required": ["expression"],
            }),
        ),
        other => reminders::spec(other)?,
    };
    Some(ToolSpec {
        name: name.to_string(),
        description: description.to_string(),
        parameters,
    })
}

fn text(args: &Value, key: &str) -> Result<String, String> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("Error: the argument {key:?} (text) is required"))
}

/// Runs a tool: its answer for the model, or an error the model is told.
pub fn run(name: &str, args: &Value, st: &mut ToolState) -> Result<String, String> {
    match name {
        "update-user-data" => state::set(
            &mut st.participant_data,
            &text(args, "key")?,
            args,
            "user data",
        )
        .inspect(|_| st.participant_changed = true),
        "append-to-participant-data" => {
            state::append(&mut st.participant_data, &text(args, "key")?, args)
                .inspect(|_| st.participant_changed = true)
        }
        "increment-counter" => state::increment(&mut st.participant_data, args)
            .inspect(|_| st.participant_changed = true),
        "end-session" => {
            st.end_session = true;
            Ok("Your intent to end the session has been registered.".into())
        }
        "set-session-state" | "append-to-session-state" | "increment-session-state-counter" => {
            let key = match name {
                "increment-session-state-counter" => format!("_counter_{}", text(args, "counter")?),
                _ => text(args, "key")?,
            };
            if RESERVED_SESSION_KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "Cannot modify the '{key}' key in session state - this is read-only"
                ));
            }
            let r = match name {
                "set-session-state" => {
                    state::set(&mut st.session_state, &key, args, "session state")
                }
                "append-to-session-state" => state::append(&mut st.session_state, &key, args),
                _ => state::increment(&mut st.session_state, args),
            };
            r.inspect(|_| st.session_changed = true)
        }
        "get-session-state" => {
            let key = text(args, "key")?;
            Ok(match st.session_state.get(&key) {
                None | Some(Value::Null) => {
                    format!("No value found for key '{key}' in session state.")
                }
                Some(v) => format!("The value for key '{key}' is: {}", state::show(v)),
            })
        }
        "calculator" => calculate(&text(args, "expression")?),
        "one-off-reminder"
        | "recurring-reminder"
        | "delete-reminder"
        | "move-scheduled-message-date" => {
            let Some(r) = &st.reminders else {
                return Err("Error: reminders need a participant".into());
            };
            reminders::run(name, args, r, &mut st.schedule_changes)
        }
        other => Err(format!("Error: there is no tool {other:?}")),
    }
}

#[cfg(test)]
mod tests;
