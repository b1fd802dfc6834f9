//! The domain error: one enum for the whole layer, mapped to HTTP once in the API crate.

use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401 with a `detail` message (and a `WWW-Authenticate` challenge).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// 403: read-only key writing, or a role/scope that does not allow the action.
    #[error("You do not have permission to perform this action.")]
    PermissionDenied,
    /// 404 with a `detail` message.
    #[error("{0}")]
    NotFound(String),
    /// 400 with a `detail` message.
    #[error("{0}")]
    BadRequest(String),
    /// 400 with field errors (`{"field": ["msg"]}`).
    #[error("invalid input: {0}")]
    Validation(Value),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 502: the chatbot's upstream (an LLM provider) failed or is misconfigured.
    #[error("{0}")]
    Upstream(String),
    /// Any status with a body of its own shape, for the few endpoints whose
    /// contract answers `{"error": …}` or `{"errors": […]}`.
    #[error("{1}")]
    Body(u16, Value),
    /// 500: logged once with its cause, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Unauthenticated(_) => 401,
            Error::PermissionDenied => 403,
            Error::NotFound(_) => 404,
            Error::BadRequest(_) | Error::Validation(_) => 400,
            Error::Conflict(_) => 409,
            Error::Upstream(_) => 502,
            Error::Body(status, _) => *status,
            Error::Internal(_) => 500,
        }
    }

    /// A single-field validation error, `{"field": ["message"]}`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut m = serde_json::Map::new();
        m.insert(
            field.to_string(),
            Value::Array(vec![Value::String(message.into())]),
        );
        Error::Validation(Value::Object(m))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Error::NotFound(detail.into())
    }
}

impl From<store::DbErr> for Error {
    fn from(e: store::DbErr) -> Self {
        Error::Internal(format!("database: {e}"))
    }
}

/// True when a database error is a unique-constraint violation (either backend).
pub fn is_unique_violation(e: &store::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
