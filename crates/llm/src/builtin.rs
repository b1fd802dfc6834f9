//! A deterministic offline "model": lets a fresh install chat without any
//! provider account, and lets tests see exactly what the engine sent.

use crate::{
    Completion, CompletionRequest, CompletionStream, LlmClient, LlmError, Role, StreamEvent,
    ToolCall, Usage,
};

/// The built-in models, by name.
pub const MODELS: [&str; 3] = ["echo", "echo-system", "echo-history"];

pub struct Builtin;

impl Builtin {
    /// The reply for `req`, computed without any I/O.
    pub fn reply(req: &CompletionRequest) -> Result<Completion, LlmError> {
        crate::no_built_in(req, "the built-in model")?;
        let last_user = req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str());
        if let Some(c) = Self::tool_round(req) {
            return Ok(c);
        }
        let text = match (req.model.as_str(), &req.response_schema) {
            (m, Some(s)) if MODELS.contains(&m) => {
                fill(&s.schema, last_user.unwrap_or("")).to_string()
            }
            (m, _) => Self::text(m, req, last_user)?,
        };
        Ok(Self::usage_of(req, text))
    }

    fn text(
        model: &str,
        req: &CompletionRequest,
        last_user: Option<&str>,
    ) -> Result<String, LlmError> {
        Ok(match model {
            "echo" => match last_user {
                Some(m) => format!("You said: {m}"),
                None => "Hello! Send me a message.".to_owned(),
            },
            "echo-system" => req.system.clone().unwrap_or_default(),
            "echo-history" => {
                let system = req.system.iter().map(|s| format!("system: {s}"));
                let turns = req
                    .messages
                    .iter()
                    .map(|m| format!("{}: {}", role_name(m.role), m.content));
                system.chain(turns).collect::<Vec<_>>().join("\n")
            }
            other => {
                return Err(LlmError::Config {
                    message: format!(
                        "unknown built-in model {other}; available: {}",
                        MODELS.join(", ")
                    ),
                    status: None,
                });
            }
        })
    }

    /// Tools, deterministically: a user message of lines `/tool NAME {json}`
    /// calls those tools (in parallel when there are several); after tool
    /// results the model reports them (`name: result`, one a line).
    fn tool_round(req: &CompletionRequest) -> Option<Completion> {
        if req.tools.is_empty() {
            return None;
        }
        let last = req.messages.last()?;
        match last.role {
            Role::Tool => {
                let results: Vec<String> = req
                    .messages
                    .iter()
                    .rev()
                    .take_while(|m| m.role == Role::Tool)
                    .map(|m| {
                        let name = m.answers.as_ref().map_or("", |a| a.name.as_str());
                        format!("{name}: {}", m.content)
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                Some(Self::usage_of(req, results.join("\n")))
            }
            Role::User => {
                let calls: Vec<ToolCall> = last
                    .content
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("/tool "))
                    .enumerate()
                    .filter_map(|(i, rest)| {
                        let (name, args) =
                            rest.trim().split_once(' ').unwrap_or((rest.trim(), "{}"));
                        req.tools.iter().any(|t| t.name == name).then(|| ToolCall {
                            id: format!("call_{i}"),
                            name: name.to_string(),
                            arguments: serde_json::from_str(args.trim()).unwrap_or_else(|_| {
                                serde_json::Value::String(args.trim().to_string())
                            }),
                        })
                    })
                    .collect();
                if calls.is_empty() {
                    return None;
                }
                let mut c = Self::usage_of(req, String::new());
                c.finish_reason = Some("tool_calls".into());
                c.tool_calls = calls;
                Some(c)
            }
            _ => None,
        }
    }

    fn usage_of(req: &CompletionRequest, text: String) -> Completion {
        let input_chars = req.system.as_deref().map_or(0, char_count)
            + req
                .messages
                .iter()
                .map(|m| char_count(&m.content))
                .sum::<usize>();
        let usage = Usage {
            input_tokens: tokens(input_chars),
            output_tokens: tokens(char_count(&text)),
            cached_input_tokens: 0,
            cache_write_tokens: 0,
        };
        Completion {
            text,
            usage,
            model: req.model.clone(),
            finish_reason: Some("stop".to_owned()),
            tool_calls: Vec::new(),
        }
    }
}

/// A structured answer, deterministically: an enum string takes the first of
/// its values the user's message mentions (else null: it does not know), another
/// string the message itself, an object each of its properties; anything
/// else is null.
fn fill(schema: &serde_json::Value, message: &str) -> serde_json::Value {
    use serde_json::Value;
    let lower = message.to_lowercase();
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .find(|v| {
                v.as_str()
                    .is_some_and(|s| lower.contains(&s.to_lowercase()))
            })
            .cloned()
            .unwrap_or(Value::Null);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => Value::Object(
            schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .map(|(k, p)| (k.clone(), fill(p, message)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("string") => Value::String(message.to_string()),
        _ => Value::Null,
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// The usual rule of thumb: about four characters per token, rounded up.
fn tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

/// Splits `text` into words, each keeping the whitespace that follows it
/// (leading whitespace stays with the first word), so the pieces
/// concatenate back to `text`.
pub fn split_words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut prev_space = false;
    for c in text.chars() {
        let space = c.is_whitespace();
        if !space && prev_space && current.chars().any(|ch| !ch.is_whitespace()) {
            pieces.push(std::mem::take(&mut current));
        }
        current.push(c);
        prev_space = space;
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[async_trait::async_trait]
impl LlmClient for Builtin {
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, LlmError> {
        Self::reply(req)
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<CompletionStream, LlmError> {
        let completion = Self::reply(req)?;
        let mut events: Vec<Result<StreamEvent, LlmError>> = split_words(&completion.text)
            .into_iter()
            .map(|w| Ok(StreamEvent::Delta(w)))
            .collect();
        events.push(Ok(StreamEvent::Done(completion)));
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_words_keeps_all_whitespace() {
        for text in [
            "",
            "one",
            "You said: hi  there\n",
            "  lead",
            "a\tb\n\nc ",
            "  ",
        ] {
            let pieces = split_words(text);
            assert_eq!(pieces.concat(), text);
        }
        assert_eq!(split_words("You said: hi"), vec!["You ", "said: ", "hi"]);
        assert_eq!(split_words("  x y"), vec!["  x ", "y"]);
    }
}
