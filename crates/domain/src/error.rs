//! The domain error: one enum for the whole layer, naming what went wrong.
//! It carries no HTTP: the API crate maps each variant to a status and the
//! contract's body in one place (`api/src/error.rs`).

use uuid::Uuid;

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid credential (the message says which problem).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A read-only key writing, or a role/scope that does not allow the action.
    #[error("You do not have permission to perform this action.")]
    PermissionDenied,
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be carried out as asked (a message for the caller).
    #[error("{0}")]
    BadRequest(String),
    /// One field of the input is invalid.
    #[error("invalid input: {field}: {message}")]
    Field { field: String, message: String },
    /// A session for an API caller needs a participant (the key has no user).
    #[error("participant: This field is required.")]
    ParticipantRequired,
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The chatbot's upstream (an LLM provider) failed or is misconfigured.
    #[error("{0}")]
    Upstream(String),

    // The chat API's own refusals (the contract answers these as `{"error": …}`).
    /// A keyless caller asked for a chatbot that is not public.
    #[error("Authentication required to chat with this chatbot")]
    ChatAccessDenied,
    /// Choosing a version needs a team member's key.
    #[error("Version number requires authentication")]
    VersionRequiresMember,
    /// The channel is disabled; the message is the channel's own.
    #[error("{0}")]
    ChannelUnavailable(String),
    #[error("Session has ended")]
    SessionEnded,
    #[error("One or more file IDs are invalid")]
    InvalidAttachments,
    #[error("Session token required")]
    SessionTokenRequired,
    #[error("Invalid session token")]
    SessionTokenInvalid,
    #[error("Session has expired")]
    SessionExpired,
    /// An embed key that does not belong to the session's chatbot.
    #[error("Invalid widget embed key")]
    EmbedKeyMismatch,
    /// The caller did not authenticate for a session-bound endpoint.
    #[error("Authentication credentials were not provided.")]
    SessionAccessDenied,
    /// Participant upsert: chatbots the body names that the team does not have.
    #[error("chatbots not found: {0:?}")]
    ChatbotsNotFound(Vec<Uuid>),

    /// An OAuth2 protocol refusal (answered with RFC 6749 §5.2's body).
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthFailure),

    /// Logged once with its cause where it is turned into a response; never
    /// sent to the client.
    #[error("internal error: {context}")]
    Internal {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// A single-field validation error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Field {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Error::NotFound(detail.into())
    }

    /// An internal failure with no underlying error value.
    pub fn internal(context: impl Into<String>) -> Self {
        Error::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// An internal failure caused by `source`.
    pub fn internal_from(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Internal {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Internal { .. })
    }

    /// The whole cause chain, for the one log line an internal error gets.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }
}

impl Error {
    /// `conflict` when `e` violates `key`, else `e` as an internal error.
    pub(crate) fn unique(
        e: store::DbErr,
        key: store::constraints::UniqueKey,
        conflict: impl FnOnce() -> String,
    ) -> Self {
        if key.violated_by(&e) {
            Error::Conflict(conflict())
        } else {
            e.into()
        }
    }
}

impl From<store::DbErr> for Error {
    fn from(e: store::DbErr) -> Self {
        Error::internal_from("database", e)
    }
}
