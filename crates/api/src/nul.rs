//! One rule for NUL characters on both databases: PostgreSQL cannot store
//! them in text or JSON, so they are refused at the edge with a 400 naming
//! the field (DRF's message), before any handler or query sees them —
//! in the path, the query string, a JSON body (keys and values, at any
//! depth) and multipart text fields and file names.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const MESSAGE: &str = "Null characters are not allowed.";

/// The field error for `field`.
pub fn field_error(field: &str) -> crate::ApiError {
    crate::ApiError::Fields(json!({ field: [MESSAGE] }))
}

pub fn refusal(field: &str) -> Response {
    field_error(field).into_response()
}

/// The top-level field of a JSON object holding a NUL anywhere inside it.
pub fn field_with_nul(body: &serde_json::Map<String, Value>) -> Option<&str> {
    fn has(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has(v)),
            _ => false,
        }
    }
    body.iter()
        .find(|(k, v)| k.contains('\0') || has(v))
        .map(|(k, _)| k.as_str())
}

/// Refuses a request whose path or query string decodes to a NUL.
pub async fn refuse_in_uri(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let in_path = percent_decoded_has_nul(uri.path());
    if in_path {
        return crate::error::detail(StatusCode::BAD_REQUEST, MESSAGE);
    }
    if let Some(q) = uri.query()
        && let Some((k, _)) =
            form_urlencoded::parse(q.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        let field = k.replace('\0', "");
        return refusal(&field);
    }
    next.run(req).await
}

fn percent_decoded_has_nul(path: &str) -> bool {
    path.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
        || path.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field_holding_a_nul_at_any_depth() {
        let body = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(field_with_nul(&body(json!({"a": "ok", "b": 1}))), None);
        assert_eq!(field_with_nul(&body(json!({"a": "x\u{0}y"}))), Some("a"));
        assert_eq!(
            field_with_nul(&body(json!({"a": "ok", "data": {"k": ["v", "\u{0}"]}}))),
            Some("data")
        );
        assert_eq!(
            field_with_nul(&body(json!({"data": {"k\u{0}": 1}}))),
            Some("data")
        );
        assert!(percent_decoded_has_nul("/api/participants/a%00b/"));
        assert!(!percent_decoded_has_nul("/api/participants/a%2000/"));
    }
}
