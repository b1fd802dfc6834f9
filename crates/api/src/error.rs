//! The one mapping from errors to HTTP responses in the contract's shapes:
//! every status code and error body the API answers is built here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Error;
use serde_json::{Value, json};

/// An error a handler answers with.
#[derive(Debug)]
pub enum ApiError {
    /// A domain error, mapped below.
    Domain(Error),
    /// `{"error": message}`: the endpoints whose contract answers this shape.
    Plain(StatusCode, String),
    /// `{"detail": message}` with a status of its own (405, 415, …).
    Detail(StatusCode, String),
    /// The OpenAI-compatible endpoint's error envelope.
    OpenAi(StatusCode, String),
    /// 400 with field errors in DRF's shape, as the request reader built them.
    Fields(Value),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Domain(e)
    }
}

impl ApiError {
    pub fn plain(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::Plain(status, message.into())
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::Domain(Error::not_found(detail))
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"api\"";

fn detail_body(message: impl std::fmt::Display) -> Value {
    json!({"detail": message.to_string()})
}

fn error_body(message: impl std::fmt::Display) -> Value {
    json!({"error": message.to_string()})
}

fn coded(message: impl std::fmt::Display, code: &str) -> Value {
    json!({"error": message.to_string(), "code": code})
}

/// Status and body of a domain error.
fn domain_response(e: &Error) -> (StatusCode, Value) {
    match e {
        Error::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, detail_body(m)),
        Error::PermissionDenied => (StatusCode::FORBIDDEN, detail_body(e)),
        Error::NotFound(m) => (StatusCode::NOT_FOUND, detail_body(m)),
        Error::BadRequest(m) => (StatusCode::BAD_REQUEST, detail_body(m)),
        Error::Field { field, message } => (StatusCode::BAD_REQUEST, json!({ field: [message] })),
        Error::ParticipantRequired => (
            StatusCode::BAD_REQUEST,
            json!({"participant": "This field is required."}),
        ),
        Error::Conflict(m) => (StatusCode::CONFLICT, detail_body(m)),
        Error::Upstream(m) => (StatusCode::BAD_GATEWAY, detail_body(m)),
        Error::ChatAccessDenied => (StatusCode::UNAUTHORIZED, coded(e, "chat_access_denied")),
        Error::VersionRequiresMember | Error::ChannelUnavailable(_) => {
            (StatusCode::FORBIDDEN, error_body(e))
        }
        Error::SessionEnded | Error::InvalidAttachments => (StatusCode::BAD_REQUEST, error_body(e)),
        Error::SessionTokenRequired => (StatusCode::FORBIDDEN, coded(e, "session_token_required")),
        Error::SessionTokenInvalid => (StatusCode::FORBIDDEN, coded(e, "session_token_invalid")),
        Error::SessionExpired => (StatusCode::FORBIDDEN, coded(e, "session_expired")),
        Error::EmbedKeyMismatch | Error::SessionAccessDenied => {
            (StatusCode::FORBIDDEN, detail_body(e))
        }
        Error::ChatbotsNotFound(ids) => (
            StatusCode::NOT_FOUND,
            json!({"errors": ids
                .iter()
                .map(|id| json!({"message": format!("Experiment {id} not found")}))
                .collect::<Vec<_>>()}),
        ),
        Error::OAuth(f) => {
            let status = if f.code == domain::oauth::ErrorCode::InvalidClient {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            (
                status,
                json!({"error": f.code.as_str(), "error_description": f.description}),
            )
        }
        Error::Internal { .. } => {
            // Logged once, here; the client only learns that it failed.
            tracing::error!(cause = %e.chain(), "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                detail_body("A server error occurred."),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let oauth = matches!(self, ApiError::Domain(Error::OAuth(_)));
        let (status, body) = match self {
            ApiError::Domain(e) => domain_response(&e),
            ApiError::Plain(status, m) => (status, error_body(m)),
            ApiError::Detail(status, m) => (status, detail_body(m)),
            ApiError::Fields(v) => (StatusCode::BAD_REQUEST, v),
            ApiError::OpenAi(status, m) => (
                status,
                json!({"error": {"message": m, "type": "error", "param": null, "code": null}}),
            ),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // A token endpoint's client authenticates with HTTP Basic.
            let challenge = if oauth {
                "Basic realm=\"oauth\""
            } else {
                WWW_AUTHENTICATE
            };
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        resp
    }
}

/// A `{"detail": ...}` response with any status (405, 415, …).
pub fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError::Detail(status, message.into()).into_response()
}
