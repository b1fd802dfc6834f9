//! Anthropic Messages API.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{self, Ctx, Decoder, Step, Summary};
use crate::sse::SseEvent;
use crate::{
    Completion, CompletionRequest, CompletionStream, LlmClient, LlmError, ProviderConfig, Role,
    ToolCall, Usage,
};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when the request leaves it unset.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

pub struct Anthropic {
    cfg: ProviderConfig,
    http: reqwest::Client,
    url: String,
}

impl Anthropic {
    pub fn new(cfg: ProviderConfig, http: reqwest::Client) -> Self {
        let url = format!("{}/v1/messages", http::base_url(&cfg, DEFAULT_BASE_URL));
        Self { cfg, http, url }
    }

    fn request(
        &self,
        ctx: &Ctx,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, LlmError> {
        let mut auth: Vec<(&'static str, &str)> = vec![
            ("anthropic-version", API_VERSION),
            ("content-type", "application/json"),
        ];
        if let Some(key) = self.cfg.api_key.as_deref().filter(|k| !k.is_empty()) {
            auth.push(("x-api-key", key));
        }
        let headers = http::headers(ctx, &auth, &self.cfg)?;
        Ok(self
            .http
            .post(&self.url)
            .headers(headers)
            .json(&body(req, stream)))
    }
}

fn body(req: &CompletionRequest, stream: bool) -> MessagesRequest<'_> {
    // Anthropic takes only user/assistant turns, alternating: system turns
    // join the system prompt, tool results are user turns of `tool_result`
    // blocks, and runs of one role become one turn.
    let mut system: Vec<&str> = req.system.iter().map(String::as_str).collect();
    let mut messages: Vec<WireMessage> = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let (role, blocks) = match m.role {
            Role::System => {
                system.push(&m.content);
                continue;
            }
            Role::User => ("user", vec![json!({"type": "text", "text": m.content})]),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                for c in &m.tool_calls {
                    blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}));
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                let (id, is_error) = m
                    .answers
                    .as_ref()
                    .map_or((String::new(), false), |a| (a.call_id.clone(), a.is_error));
                (
                    "user",
                    vec![
                        json!({"type": "tool_result", "tool_use_id": id, "content": m.content, "is_error": is_error}),
                    ],
                )
            }
        };
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => messages.push(WireMessage {
                role,
                content: blocks,
            }),
        }
    }
    system.retain(|s| !s.is_empty());
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(
            |t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}),
        )
        .collect();
    for b in &req.built_in {
        match b {
            crate::BuiltInTool::WebSearch(w) => {
                let mut t = json!({"type": "web_search_20250305", "name": "web_search", "max_uses": w.max_uses.unwrap_or(5)});
                if !w.allowed_domains.is_empty() {
                    t["allowed_domains"] = json!(w.allowed_domains);
                }
                if !w.blocked_domains.is_empty() {
                    t["blocked_domains"] = json!(w.blocked_domains);
                }
                tools.push(t);
            }
        }
    }
    let mut tool_choice = None;
    // Structured output: one tool whose input is the shape, and the model must call it.
    if let Some(s) = &req.response_schema {
        tools.push(json!({
            "name": s.name,
            "description": "Give the answer in this shape.",
            "input_schema": s.schema,
        }));
        tool_choice = Some(json!({"type": "tool", "name": s.name}));
    }
    MessagesRequest {
        model: &req.model,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: messages.into_iter().map(WireMessage::simplified).collect(),
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: req.temperature,
        stream,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
    }
}

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<SentMessage>,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

struct WireMessage {
    role: &'static str,
    content: Vec<Value>,
}

#[derive(Serialize)]
struct SentMessage {
    role: &'static str,
    content: Value,
}

impl WireMessage {
    /// A turn of text only is sent as one string (text runs joined by a
    /// blank line), as before tools existed; a turn with tool blocks as blocks.
    fn simplified(self) -> SentMessage {
        let texts: Option<Vec<&str>> = self
            .content
            .iter()
            .map(
                |b| match (b.get("type").and_then(Value::as_str), b.get("text")) {
                    (Some("text"), Some(Value::String(t))) => Some(t.as_str()),
                    _ => None,
                },
            )
            .collect();
        let content = match texts {
            Some(t) => Value::String(t.join("\n\n")),
            None => Value::Array(self.content.clone()),
        };
        SentMessage {
            role: self.role,
            content,
        }
    }
}

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    model: Option<String>,
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    /// A `tool_use` block's call: its id, tool name and arguments.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Applies the fields present; stream events carry partial, cumulative
    /// counts.
    fn apply(&self, u: &mut Usage) {
        if let Some(n) = self.input_tokens {
            u.input_tokens = n;
        }
        if let Some(n) = self.output_tokens {
            u.output_tokens = n;
        }
        if let Some(n) = self.cache_read_input_tokens {
            u.cached_input_tokens = n;
        }
        if let Some(n) = self.cache_creation_input_tokens {
            u.cache_write_tokens = n;
        }
    }
}

#[async_trait::async_trait]
impl LlmClient for Anthropic {
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, LlmError> {
        let ctx = Ctx::new("anthropic", &self.cfg, &req.model);
        let resp: MessagesResponse = http::send_json(&ctx, self.request(&ctx, req, false)?).await?;
        let structured = req.response_schema.as_ref().map(|s| s.name.as_str());
        let answer = resp
            .content
            .iter()
            .find(|b| b.kind == "tool_use" && b.name.as_deref() == structured);
        let text: String = match answer {
            Some(b) if structured.is_some() => {
                b.input.as_ref().map(Value::to_string).unwrap_or_default()
            }
            _ => resp
                .content
                .iter()
                .filter(|b| b.kind == "text")
                .filter_map(|b| b.text.as_deref())
                .collect(),
        };
        let tool_calls = resp
            .content
            .iter()
            .filter(|b| b.kind == "tool_use" && b.name.as_deref() != structured)
            .map(|b| ToolCall {
                id: b.id.clone().unwrap_or_default(),
                name: b.name.clone().unwrap_or_default(),
                arguments: b.input.clone().unwrap_or_else(|| json!({})),
            })
            .collect();
        let mut usage = Usage::default();
        if let Some(u) = &resp.usage {
            u.apply(&mut usage);
        }
        Ok(Completion {
            text,
            usage,
            model: resp.model.unwrap_or_else(|| req.model.clone()),
            finish_reason: resp.stop_reason,
            tool_calls,
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<CompletionStream, LlmError> {
        let ctx = Ctx::new("anthropic", &self.cfg, &req.model);
        let builder = self.request(&ctx, req, true)?;
        let decoder = EventDecoder {
            ctx: ctx.clone(),
            summary: Summary::default(),
            structured: req.response_schema.as_ref().map(|s| s.name.clone()),
            calls: Vec::new(),
        };
        http::send_stream(ctx, builder, decoder).await
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        #[serde(default)]
        index: usize,
        content_block: Block,
    },
    ContentBlockDelta {
        #[serde(default)]
        index: usize,
        delta: BlockDelta,
    },
    MessageDelta {
        #[serde(default)]
        delta: Option<MessageDelta>,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: Value,
    },
    /// `ping`, `content_block_stop`, and whatever
    /// Anthropic adds later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct BlockDelta {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    /// `input_json_delta`: a piece of a tool call's arguments.
    #[serde(default)]
    partial_json: Option<String>,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

struct EventDecoder {
    ctx: Ctx,
    summary: Summary,
    /// The structured-output tool's name: its input is the answer's text.
    structured: Option<String>,
    /// Tool calls by content block index.
    calls: Vec<(usize, crate::PartialCall)>,
}

impl Decoder for EventDecoder {
    fn event(&mut self, ev: SseEvent) -> Result<Step, LlmError> {
        if ev.data.trim().is_empty() {
            return Ok(Step::Skip);
        }
        let event: Event = http::parse_json(&self.ctx, ev.data.as_bytes())?;
        match event {
            Event::MessageStart { message } => {
                if let Some(u) = &message.usage {
                    u.apply(&mut self.summary.usage);
                }
                self.summary.model = message.model.filter(|m| !m.is_empty());
                Ok(Step::Skip)
            }
            Event::ContentBlockDelta { delta, .. } if delta.kind == "text_delta" => {
                Ok(Step::Text(delta.text.unwrap_or_default()))
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } if content_block.kind == "tool_use" && content_block.name != self.structured => {
                self.calls.push((
                    index,
                    crate::PartialCall {
                        id: content_block.id.unwrap_or_default(),
                        name: content_block.name.unwrap_or_default(),
                        arguments: String::new(),
                    },
                ));
                Ok(Step::Skip)
            }
            Event::ContentBlockStart { .. } => Ok(Step::Skip),
            Event::ContentBlockDelta { index, delta } if delta.kind == "input_json_delta" => {
                let piece = delta.partial_json.unwrap_or_default();
                match self.calls.iter_mut().find(|(i, _)| *i == index) {
                    Some((_, call)) => {
                        call.arguments.push_str(&piece);
                        Ok(Step::Skip)
                    }
                    // A structured answer streams as the arguments of the forced tool call.
                    None => Ok(Step::Text(piece)),
                }
            }
            Event::ContentBlockDelta { .. } => Ok(Step::Skip),
            Event::MessageDelta { delta, usage } => {
                if let Some(u) = &usage {
                    u.apply(&mut self.summary.usage);
                }
                if let Some(reason) = delta.and_then(|d| d.stop_reason) {
                    self.summary.finish_reason = Some(reason);
                }
                Ok(Step::Skip)
            }
            Event::MessageStop => Ok(Step::End),
            Event::Error { error } => Err(self.ctx.event_error(&error)),
            Event::Other => Ok(Step::Skip),
        }
    }

    fn eof(&mut self) -> Result<(), LlmError> {
        Err(self.ctx.invalid("the stream ended before message_stop"))
    }

    fn summary(&mut self) -> Summary {
        let mut s = std::mem::take(&mut self.summary);
        s.tool_calls = std::mem::take(&mut self.calls)
            .into_iter()
            .map(|(_, c)| c.finish())
            .collect();
        s
    }
}
