//! OpenAI chat completions, and through `base_url`/`headers` every
//! OpenAI-compatible service (Azure, Groq, OpenRouter, Ollama, vLLM…).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{self, Ctx, Decoder, Step, Summary};
use crate::sse::SseEvent;
use crate::{
    ChatMessage, Completion, CompletionRequest, CompletionStream, LlmClient, LlmError,
    ProviderConfig, Role, ToolCall, Usage,
};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

pub struct OpenAi {
    cfg: ProviderConfig,
    http: reqwest::Client,
    url: String,
}

impl OpenAi {
    pub fn new(cfg: ProviderConfig, http: reqwest::Client) -> Self {
        let url = format!(
            "{}/chat/completions",
            http::base_url(&cfg, DEFAULT_BASE_URL)
        );
        Self { cfg, http, url }
    }

    fn request(
        &self,
        ctx: &Ctx,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, LlmError> {
        let bearer = self
            .cfg
            .api_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(|k| format!("Bearer {k}"));
        let auth: Vec<(&'static str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        let headers = http::headers(ctx, &auth, &self.cfg)?;
        Ok(self
            .http
            .post(&self.url)
            .headers(headers)
            .json(&body(req, stream)))
    }
}

/// The JSON body of a chat completion call.
fn body(req: &CompletionRequest, stream: bool) -> impl Serialize + '_ {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(WireMessage {
            role: "system",
            content: Some(system),
            tool_calls: None,
            tool_call_id: None,
        });
    }
    messages.extend(req.messages.iter().map(|m: &ChatMessage| WireMessage {
        role: role(m.role),
        // An assistant turn that only calls tools has no content.
        content: (!m.content.is_empty() || m.tool_calls.is_empty()).then_some(m.content.as_str()),
        tool_calls: (!m.tool_calls.is_empty()).then(|| {
            m.tool_calls
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments.to_string()},
                    })
                })
                .collect()
        }),
        tool_call_id: m.answers.as_ref().map(|a| a.call_id.as_str()),
    }));
    ChatRequest {
        model: &req.model,
        messages,
        temperature: req.temperature,
        max_tokens: req.max_tokens,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        tools: (!req.tools.is_empty()).then(|| {
            req.tools
                .iter()
                .map(|t| {
                    serde_json::json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect()
        }),
        // Chat Completions documents web search as `web_search_options` (search models).
        web_search_options: req
            .built_in
            .iter()
            .any(|t| matches!(t, crate::BuiltInTool::WebSearch(_)))
            .then(|| serde_json::json!({})),
        response_format: req.response_schema.as_ref().map(|s| {
            serde_json::json!({
                "type": "json_schema",
                "json_schema": {"name": s.name, "schema": s.schema, "strict": true},
            })
        }),
    }
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_search_options: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ResponseMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseMessage {
    /// Null when the model answered with tool calls or a refusal only.
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    /// JSON text, as the model wrote it.
    #[serde(default)]
    arguments: String,
}

/// Arguments are JSON text; text that is not JSON is passed on as a string
/// (the tool answers the model that its arguments are invalid).
pub(crate) fn parse_arguments(text: &str) -> serde_json::Value {
    if text.trim().is_empty() {
        return serde_json::json!({});
    }
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        let prompt = self.prompt_tokens.unwrap_or(0);
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        Usage {
            input_tokens: prompt.saturating_sub(cached),
            output_tokens: self.completion_tokens.unwrap_or(0),
            cached_input_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

#[async_trait::async_trait]
impl LlmClient for OpenAi {
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, LlmError> {
        let ctx = Ctx::new("openai", &self.cfg, &req.model);
        let resp: ChatResponse = http::send_json(&ctx, self.request(&ctx, req, false)?).await?;
        let Some(choice) = resp.choices.into_iter().next() else {
            return Err(ctx.invalid("the response has no choices"));
        };
        let tool_calls = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                arguments: parse_arguments(&c.function.arguments),
                name: c.function.name,
            })
            .collect();
        let text = match (choice.message.content, choice.message.refusal) {
            (Some(c), _) => c,
            (None, Some(r)) => r,
            (None, None) => String::new(),
        };
        Ok(Completion {
            text,
            usage: resp.usage.unwrap_or_default().to_usage(),
            model: resp.model.unwrap_or_else(|| req.model.clone()),
            finish_reason: choice.finish_reason,
            tool_calls,
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<CompletionStream, LlmError> {
        let ctx = Ctx::new("openai", &self.cfg, &req.model);
        let builder = self.request(&ctx, req, true)?;
        let decoder = ChunkDecoder {
            ctx: ctx.clone(),
            summary: Summary::default(),
            calls: Vec::new(),
        };
        http::send_stream(ctx, builder, decoder).await
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    tool_calls: Option<Vec<DeltaCall>>,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct DeltaCall {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

struct ChunkDecoder {
    ctx: Ctx,
    summary: Summary,
    /// Tool calls by their index in the choice, as their pieces arrive.
    calls: Vec<crate::PartialCall>,
}

impl Decoder for ChunkDecoder {
    fn event(&mut self, ev: SseEvent) -> Result<Step, LlmError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            return Ok(Step::End);
        }
        if data.is_empty() {
            return Ok(Step::Skip);
        }
        let chunk: Chunk = http::parse_json(&self.ctx, data.as_bytes())?;
        if let Some(err) = chunk.error {
            return Err(self.ctx.event_error(&err));
        }
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.summary.model = Some(model);
        }
        if let Some(usage) = chunk.usage {
            self.summary.usage = usage.to_usage();
        }
        let Some(choice) = chunk.choices.and_then(|c| c.into_iter().next()) else {
            return Ok(Step::Skip);
        };
        if choice.finish_reason.is_some() {
            self.summary.finish_reason = choice.finish_reason;
        }
        let Some(delta) = choice.delta else {
            return Ok(Step::Skip);
        };
        for d in delta.tool_calls.unwrap_or_default() {
            if self.calls.len() <= d.index {
                self.calls
                    .resize(d.index + 1, crate::PartialCall::default());
            }
            let c = &mut self.calls[d.index];
            if let Some(id) = d.id {
                c.id = id;
            }
            if let Some(f) = d.function {
                c.name.push_str(&f.name.unwrap_or_default());
                c.arguments.push_str(&f.arguments.unwrap_or_default());
            }
        }
        Ok(Step::Text(delta.content.unwrap_or_default()))
    }

    fn eof(&mut self) -> Result<(), LlmError> {
        // Some compatible servers close without `[DONE]`; a finish reason
        // still shows the answer is complete.
        if self.summary.finish_reason.is_some() {
            Ok(())
        } else {
            Err(self.ctx.invalid("the stream ended before [DONE]"))
        }
    }

    fn summary(&mut self) -> Summary {
        let mut s = std::mem::take(&mut self.summary);
        s.tool_calls = std::mem::take(&mut self.calls)
            .into_iter()
            .map(crate::PartialCall::finish)
            .collect();
        s
    }
}
