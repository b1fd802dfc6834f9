//! Google Gemini `generateContent` (Generative Language API).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{self, Ctx, Decoder, Step, Summary};
use crate::sse::SseEvent;
use crate::{
    Completion, CompletionRequest, CompletionStream, LlmClient, LlmError, ProviderConfig, Role,
    ToolCall, Usage,
};

pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

pub struct Gemini {
    cfg: ProviderConfig,
    http: reqwest::Client,
    base: String,
}

impl Gemini {
    pub fn new(cfg: ProviderConfig, http: reqwest::Client) -> Self {
        let base = http::base_url(&cfg, DEFAULT_BASE_URL);
        Self { cfg, http, base }
    }

    fn request(
        &self,
        ctx: &Ctx,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, LlmError> {
        crate::no_built_in(req, "Gemini")?;
        // Accept both `gemini-2.0-flash` and the API's own `models/gemini-2.0-flash`.
        let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
        let url = if stream {
            format!(
                "{}/v1beta/models/{model}:streamGenerateContent?alt=sse",
                self.base
            )
        } else {
            format!("{}/v1beta/models/{model}:generateContent", self.base)
        };
        let auth: Vec<(&'static str, &str)> = self
            .cfg
            .api_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(|k| ("x-goog-api-key", k))
            .into_iter()
            .collect();
        let headers = http::headers(ctx, &auth, &self.cfg)?;
        Ok(self.http.post(url).headers(headers).json(&body(req)))
    }
}

fn body(req: &CompletionRequest) -> GenerateRequest {
    // Gemini has no system role inside `contents`: system turns join the
    // system instruction.
    let mut system: Vec<&str> = req.system.iter().map(String::as_str).collect();
    let mut contents = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let (role, parts) = match m.role {
            Role::System => {
                system.push(&m.content);
                continue;
            }
            Role::User => ("user", vec![json!({"text": m.content})]),
            Role::Assistant => {
                let mut parts = Vec::new();
                if !m.content.is_empty() {
                    parts.push(json!({"text": m.content}));
                }
                for c in &m.tool_calls {
                    parts.push(json!({"functionCall": {"name": c.name, "args": c.arguments}}));
                }
                ("model", parts)
            }
            // Gemini answers calls by name, in a user turn of function responses.
            Role::Tool => {
                let name = m.answers.as_ref().map_or("", |a| a.name.as_str());
                let key = if m.answers.as_ref().is_some_and(|a| a.is_error) {
                    "error"
                } else {
                    "result"
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": {key: m.content}}})],
                )
            }
        };
        match contents.last_mut() {
            // Several tool results answer one turn of calls together.
            Some(Content { role: r, parts: p }) if *r == role && m.role == Role::Tool => {
                p.extend(parts)
            }
            _ => contents.push(Content { role, parts }),
        }
    }
    system.retain(|s| !s.is_empty());
    let schema = req
        .response_schema
        .as_ref()
        .map(|s| gemini_schema(&s.schema));
    let generation_config = (req.temperature.is_some()
        || req.max_tokens.is_some()
        || schema.is_some())
    .then(|| GenerationConfig {
        temperature: req.temperature,
        max_output_tokens: req.max_tokens,
        response_mime_type: schema.as_ref().map(|_| "application/json"),
        response_schema: schema,
    });
    GenerateRequest {
        contents,
        system_instruction: (!system.is_empty()).then(|| SystemInstruction {
            parts: vec![TextPart {
                text: system.join("\n\n"),
            }],
        }),
        generation_config,
        tools: (!req.tools.is_empty()).then(|| {
            let declarations: Vec<Value> = req
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "parameters": gemini_schema(&t.parameters)}))
                .collect();
            vec![json!({"functionDeclarations": declarations})]
        }),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest {
    contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<Value>>,
}

#[derive(Serialize)]
struct Content {
    role: &'static str,
    parts: Vec<Value>,
}

#[derive(Serialize)]
struct SystemInstruction {
    parts: Vec<TextPart>,
}

#[derive(Serialize)]
struct TextPart {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<Value>,
}

/// Gemini's `responseSchema` is an OpenAPI subset: keywords it does not know
/// (`additionalProperties`, `$schema`, `strict`) are refused, so they are dropped.
fn gemini_schema(schema: &Value) -> Value {
    let Value::Object(o) = schema else {
        return schema.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in o {
        match (k.as_str(), v) {
            ("additionalProperties" | "$schema" | "strict", _) => {}
            // Property names are the author's: keep every one, clean their schemas.
            ("properties", Value::Object(props)) => {
                let props = props
                    .iter()
                    .map(|(name, p)| (name.clone(), gemini_schema(p)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            ("items", item) => {
                out.insert(k.clone(), gemini_schema(item));
            }
            // `["string", "null"]` is a nullable string to Gemini.
            ("type", Value::Array(types)) => {
                if let Some(t) = types.iter().find(|t| t.as_str() != Some("null")) {
                    out.insert(k.clone(), t.clone());
                }
                if types.iter().any(|t| t.as_str() == Some("null")) {
                    out.insert("nullable".into(), Value::Bool(true));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Option<Vec<Candidate>>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<CandidateContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Option<Vec<Part>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    function_call: Option<FunctionCall>,
    /// Thought summaries are not part of the answer.
    #[serde(default)]
    thought: Option<bool>,
}

#[derive(Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

impl UsageMetadata {
    fn to_usage(&self) -> Usage {
        let prompt = self.prompt_token_count.unwrap_or(0);
        let cached = self.cached_content_token_count.unwrap_or(0);
        Usage {
            input_tokens: prompt.saturating_sub(cached),
            // Thinking tokens are billed as output but reported apart from
            // the candidates' tokens.
            output_tokens: self.candidates_token_count.unwrap_or(0)
                + self.thoughts_token_count.unwrap_or(0),
            cached_input_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

impl GenerateResponse {
    fn first_candidate(&self) -> Option<&Candidate> {
        self.candidates.as_ref().and_then(|c| c.first())
    }

    /// The calls the model asked for; Gemini may give no ids, so they are made up.
    fn tool_calls(&self) -> Vec<ToolCall> {
        self.first_candidate()
            .and_then(|c| c.content.as_ref())
            .and_then(|c| c.parts.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|p| p.function_call.as_ref())
            .enumerate()
            .map(|(i, f)| ToolCall {
                id: f.id.clone().unwrap_or_else(|| format!("call_{i}")),
                name: f.name.clone(),
                arguments: f.args.clone().unwrap_or_else(|| json!({})),
            })
            .collect()
    }

    fn text(&self) -> String {
        self.first_candidate()
            .and_then(|c| c.content.as_ref())
            .and_then(|c| c.parts.as_ref())
            .into_iter()
            .flatten()
            .filter(|p| p.thought != Some(true))
            .filter_map(|p| p.text.as_deref())
            .collect()
    }
}

#[async_trait::async_trait]
impl LlmClient for Gemini {
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, LlmError> {
        let ctx = Ctx::new("gemini", &self.cfg, &req.model);
        let resp: GenerateResponse = http::send_json(&ctx, self.request(&ctx, req, false)?).await?;
        if let Some(err) = &resp.error {
            return Err(ctx.event_error(err));
        }
        let finish_reason = match resp.first_candidate() {
            Some(c) => c.finish_reason.clone(),
            // A blocked prompt gets no candidate, only the reason.
            None => match resp
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.clone())
            {
                Some(reason) => Some(reason),
                None => return Err(ctx.invalid("the response has no candidates")),
            },
        };
        Ok(Completion {
            text: resp.text(),
            usage: resp
                .usage_metadata
                .as_ref()
                .map(UsageMetadata::to_usage)
                .unwrap_or_default(),
            model: resp
                .model_version
                .clone()
                .unwrap_or_else(|| req.model.clone()),
            finish_reason,
            tool_calls: resp.tool_calls(),
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<CompletionStream, LlmError> {
        let ctx = Ctx::new("gemini", &self.cfg, &req.model);
        let builder = self.request(&ctx, req, true)?;
        let decoder = ChunkDecoder {
            ctx: ctx.clone(),
            summary: Summary::default(),
            chunks: 0,
        };
        http::send_stream(ctx, builder, decoder).await
    }
}

struct ChunkDecoder {
    ctx: Ctx,
    summary: Summary,
    chunks: usize,
}

impl Decoder for ChunkDecoder {
    fn event(&mut self, ev: SseEvent) -> Result<Step, LlmError> {
        if ev.data.trim().is_empty() {
            return Ok(Step::Skip);
        }
        let chunk: GenerateResponse = http::parse_json(&self.ctx, ev.data.as_bytes())?;
        if let Some(err) = &chunk.error {
            return Err(self.ctx.event_error(err));
        }
        self.chunks += 1;
        if let Some(u) = &chunk.usage_metadata {
            self.summary.usage = u.to_usage();
        }
        if let Some(m) = chunk.model_version.as_ref().filter(|m| !m.is_empty()) {
            self.summary.model = Some(m.clone());
        }
        match chunk
            .first_candidate()
            .and_then(|c| c.finish_reason.clone())
        {
            Some(reason) => self.summary.finish_reason = Some(reason),
            None => {
                if let Some(reason) = chunk
                    .prompt_feedback
                    .as_ref()
                    .and_then(|f| f.block_reason.clone())
                {
                    self.summary.finish_reason = Some(reason);
                }
            }
        }
        // Gemini streams each function call whole, in the chunk that makes it.
        let offset = self.summary.tool_calls.len();
        self.summary
            .tool_calls
            .extend(
                chunk
                    .tool_calls()
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut c)| {
                        if c.id.starts_with("call_") {
                            c.id = format!("call_{}", offset + i);
                        }
                        c
                    }),
            );
        Ok(Step::Text(chunk.text()))
    }

    fn eof(&mut self) -> Result<(), LlmError> {
        // Gemini has no end event: the body simply ends after the last chunk.
        if self.chunks > 0 {
            Ok(())
        } else {
            Err(self.ctx.invalid("the stream ended without any response"))
        }
    }

    fn summary(&mut self) -> Summary {
        std::mem::take(&mut self.summary)
    }
}
