use std::time::Duration;

/// How a provider call failed, classified for the retry policy and for the
/// message the user of the platform sees.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LlmError {
    /// Worth retrying: 429 (with the provider's Retry-After), 5xx, timeouts,
    /// connection resets.
    #[error("provider temporarily unavailable: {message}")]
    Retryable {
        message: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: bad credentials (401/403), unknown model,
    /// exhausted quota, a request the provider rejects (400).
    #[error("provider configuration error: {message}")]
    Config {
        message: String,
        status: Option<u16>,
    },
    /// The provider answered something we cannot read (malformed JSON, a
    /// stream that ended without its final event).
    #[error("invalid provider response: {message}")]
    InvalidResponse { message: String },
}

impl LlmError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LlmError::Retryable { .. })
    }
}
