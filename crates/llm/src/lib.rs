//! LLM providers behind one trait. Adapters speak each provider's real wire
//! format over reqwest (rustls): OpenAI chat completions (and every
//! OpenAI-compatible service through base URL and headers), Anthropic
//! Messages, Gemini generateContent, and a built-in offline model. Nothing here
//! knows about HTTP handlers or the database.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;

pub mod error;
pub use error::LlmError;

// Implemented by the adapters (see their modules).
pub mod anthropic;
pub mod builtin;
pub mod gemini;
pub mod http;
pub mod openai;
pub mod retry;
pub mod speech;
mod sse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, answering an assistant turn's call.
    Tool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// An assistant turn's tool calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A tool turn: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<ToolAnswer>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            answers: None,
        }
    }

    /// The assistant turn that asked for `calls` (with any text it said).
    pub fn calling(text: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::new(Role::Assistant, text)
        }
    }

    /// The result of `call` (an error the model should know about when `is_error`).
    pub fn tool_result(call: &ToolCall, result: impl Into<String>, is_error: bool) -> Self {
        Self {
            answers: Some(ToolAnswer {
                call_id: call.id.clone(),
                name: call.name.clone(),
                is_error,
            }),
            ..Self::new(Role::Tool, result)
        }
    }
}

/// A function the model may call: its name, what it does, and a JSON Schema
/// of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call (synthesised where the provider has none).
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

/// Which call a tool turn answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolAnswer {
    pub call_id: String,
    pub name: String,
    pub is_error: bool,
}

/// One completion call. `system` is sent the way each provider expects
/// (a system message, Anthropic's `system`, Gemini's `systemInstruction`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompletionRequest {
    pub model: String,
    pub system: Option<String>,
    /// Conversation turns, oldest first; the last one is normally the user's.
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Structured output: the reply is JSON text of this shape (OpenAI
    /// `response_format: json_schema`, an Anthropic tool the model must call,
    /// Gemini `responseSchema`).
    pub response_schema: Option<ResponseSchema>,
    /// Functions the model may call; its answer then may be `tool_calls`.
    pub tools: Vec<ToolSpec>,
    /// Tools the provider itself runs (web search), sent as it documents them.
    pub built_in: Vec<BuiltInTool>,
}

/// A tool the provider runs on its side.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebSearch {
    /// Only these domains (Anthropic).
    pub allowed_domains: Vec<String>,
    /// Never these domains (Anthropic).
    pub blocked_domains: Vec<String>,
    /// At most this many searches per call (Anthropic; default 5).
    pub max_uses: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BuiltInTool {
    WebSearch(WebSearch),
}

/// Refuses built-in tools a provider does not have.
pub(crate) fn no_built_in(req: &CompletionRequest, provider: &str) -> Result<(), LlmError> {
    match req.built_in.first() {
        None => Ok(()),
        Some(BuiltInTool::WebSearch(_)) => Err(LlmError::Config {
            message: format!("web search is not available with {provider}"),
            status: None,
        }),
    }
}

/// A tool call streamed in pieces: its id and name, and its arguments' text
/// as it arrives.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartialCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl PartialCall {
    pub fn finish(self) -> ToolCall {
        ToolCall {
            id: self.id,
            name: self.name,
            arguments: openai::parse_arguments(&self.arguments),
        }
    }
}

/// A JSON Schema the reply must follow, with a name for providers that want one.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseSchema {
    pub name: String,
    pub schema: serde_json::Value,
}

/// Token counts exactly as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Input tokens that were not served from a cache.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Input tokens written to the provider's prompt cache (Anthropic).
    pub cache_write_tokens: u64,
}

impl Usage {
    pub fn new(input: u64, output: u64, cached_input: u64, cache_write: u64) -> Self {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cached_input_tokens: cached_input,
            cache_write_tokens: cache_write,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
    /// The model name the provider reported (falls back to the requested one).
    pub model: String,
    pub finish_reason: Option<String>,
    /// The tools the model asked to call (run them and send the results back).
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of the reply text, in order.
    Delta(String),
    /// The end of the stream: the whole text and the final usage.
    Done(Completion),
}

pub type CompletionStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

#[async_trait::async_trait]
pub trait LlmClient: Send + Sync {
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, LlmError>;
    /// Starts a streamed completion. The stream yields deltas and ends with
    /// exactly one `Done` on success, or an `Err` item on failure.
    async fn stream(&self, req: &CompletionRequest) -> Result<CompletionStream, LlmError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Gemini,
    Builtin,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Builtin => "builtin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(ProviderKind::Openai),
            "anthropic" => Some(ProviderKind::Anthropic),
            "gemini" => Some(ProviderKind::Gemini),
            "builtin" => Some(ProviderKind::Builtin),
            _ => None,
        }
    }
}

/// Everything needed to reach one provider. `api_key` is the decrypted secret:
/// never log this struct's fields (its Debug impl redacts the key).
#[derive(Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Overrides the provider's public endpoint (Azure, Groq, Ollama, a test fake…).
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    /// Extra headers sent on every call (e.g. OpenRouter's, or Azure's `api-key`).
    pub headers: Vec<(String, String)>,
    /// Whole-request timeout for plain calls; idle timeout between stream chunks.
    pub timeout: Duration,
    /// Retries after the first attempt for retryable errors.
    pub max_retries: u32,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl ProviderConfig {
    pub fn new(kind: ProviderKind) -> Self {
        Self {
            kind,
            base_url: None,
            api_key: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(120),
            max_retries: 3,
        }
    }
}

/// A client for `cfg`, wrapped in the retry policy. `http` is shared by all
/// clients of a process (one connection pool).
pub fn client_for(cfg: &ProviderConfig, http: &reqwest::Client) -> Arc<dyn LlmClient> {
    let inner: Arc<dyn LlmClient> = match cfg.kind {
        ProviderKind::Openai => Arc::new(openai::OpenAi::new(cfg.clone(), http.clone())),
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(cfg.clone(), http.clone())),
        ProviderKind::Gemini => Arc::new(gemini::Gemini::new(cfg.clone(), http.clone())),
        ProviderKind::Builtin => Arc::new(builtin::Builtin),
    };
    Arc::new(retry::Retrying::new(inner, cfg.max_retries))
}
