//! JSON request bodies with the original's error answers: `415` for another
//! content type, `400 {"detail": "JSON parse error - …"}` for malformed JSON,
//! and field errors (`{"field": ["msg"]}`) for missing or mistyped fields.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::detail;
use crate::input::type_name;

/// A JSON object body. An empty body reads as `{}`.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| e.into_response())?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject(Map::new()));
        }
        let is_json = content_type.as_deref().is_some_and(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        });
        if !is_json {
            return Err(detail(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Unsupported media type \"{}\" in request.",
                    content_type.unwrap_or_default()
                ),
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => match crate::nul::field_with_nul(&m) {
                Some(field) => Err(crate::nul::refusal(field)),
                None => Ok(JsonObject(m)),
            },
            Ok(other) => Err((
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"non_field_errors": [format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    type_name(&other)
                )]})),
            )
                .into_response()),
            Err(e) => Err(detail(
                StatusCode::BAD_REQUEST,
                format!("JSON parse error - {e}"),
            )),
        }
    }
}
