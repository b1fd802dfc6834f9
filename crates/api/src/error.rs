//! The one mapping from domain errors to HTTP responses in the contract's shapes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Error;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"api\"";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match &self.0 {
            Error::Validation(v) => v.clone(),
            Error::Body(_, v) => v.clone(),
            Error::Internal(cause) => {
                // Logged once here; the client only learns that it failed.
                tracing::error!(%cause, "internal error");
                json!({"detail": "A server error occurred."})
            }
            other => json!({"detail": other.to_string()}),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        resp
    }
}

/// A `{"detail": ...}` response with any status (405, 415, …).
pub fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"detail": message.into()}))).into_response()
}
