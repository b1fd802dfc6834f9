/// Why a turn did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The provider failed (after retries, for retryable errors).
    #[error("{0}")]
    Provider(#[from] llm::LlmError),
    /// The chatbot cannot run as configured (no pipeline, missing provider…).
    #[error("{0}")]
    Config(String),
    /// A code node's Python failed or hit a sandbox limit.
    #[error("{0}")]
    Code(String),
    /// The chatbot's allowlist keeps the participant out: what they are told
    /// instead of an answer (nothing of them was stored).
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Domain(#[from] domain::Error),
}

impl TurnError {
    /// Whether trying again later may succeed (a provider outage).
    pub fn is_retryable(&self) -> bool {
        match self {
            TurnError::Provider(e) => e.is_retryable(),
            TurnError::Domain(e) => e.is_internal(),
            _ => false,
        }
    }

    /// The message for the client: what failed, never internal details.
    pub fn public_message(&self) -> String {
        match self {
            TurnError::Provider(e) => format!("The chatbot's LLM provider failed: {e}"),
            TurnError::Config(m) => format!("The chatbot is not configured correctly: {m}"),
            TurnError::Code(m) => format!("The chatbot's Python node failed: {m}"),
            TurnError::NotAllowed(m) => m.clone(),
            TurnError::Domain(domain::Error::Internal { .. }) => "A server error occurred.".into(),
            TurnError::Domain(e) => e.to_string(),
        }
    }
}
