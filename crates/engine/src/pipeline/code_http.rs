//! The Python node's `http` helper (the original's restricted HTTP client):
//! requests go through the outbound client of custom actions, so the same
//! address rules, timeout and response cap hold. The answer is the
//! original's dict: `status_code`, `headers`, `content` (bytes), `text`,
//! `json`, `is_success`, `is_error`. No redirects are followed; `auth`
//! names the original's auth providers, which code here cannot use.

use std::time::Duration;

use sandbox::{ExcType, MontyObject};
use serde_json::Value;

use crate::outbound::{Outbound, OutboundError};

/// The largest request body (the original's `RESTRICTED_HTTP_MAX_REQUEST_BYTES`).
const MAX_REQUEST_BYTES: usize = 1 << 20;

pub(super) struct Request {
    pub method: String,
    pub url: String,
    /// `params`, `headers`, `auth`, `json`, `data`, `files`, `timeout`.
    pub options: Value,
}

type Failure = (ExcType, String);

fn invalid(message: impl Into<String>) -> Failure {
    (ExcType::ValueError, message.into())
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) async fn send(outbound: &Outbound, r: Request) -> Result<MontyObject, Failure> {
    let opt = |k: &str| r.options.get(k).filter(|v| !v.is_null());
    if opt("auth").is_some() {
        return Err((
            ExcType::RuntimeError,
            "Auth providers are not available in this context".into(),
        ));
    }
    if opt("files").is_some() {
        return Err(invalid("file uploads are not available in the sandbox"));
    }
    if opt("json").is_some() && opt("data").is_some() {
        return Err(invalid("'json' and 'data' are mutually exclusive"));
    }
    let method = reqwest::Method::from_bytes(r.method.as_bytes())
        .map_err(|_| invalid(format!("{} is not an HTTP method", r.method)))?;
    let mut url = url::Url::parse(&r.url).map_err(|e| invalid(format!("Invalid URL: {e}")))?;
    if let Some(params) = opt("params") {
        let Value::Object(params) = params else {
            return Err(invalid("'params' must be a dict"));
        };
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            match v {
                Value::Array(items) => {
                    for i in items {
                        q.append_pair(k, &text_of(i));
                    }
                }
                other => {
                    q.append_pair(k, &text_of(other));
                }
            }
        }
    }
    // `fetch` checks the address against the outbound rules.
    let mut rb = outbound.request(method, url);
    if let Some(headers) = opt("headers") {
        let Value::Object(headers) = headers else {
            return Err(invalid("'headers' must be a dict"));
        };
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("host") {
                return Err(invalid("the Host header cannot be set"));
            }
            rb = rb.header(k.as_str(), text_of(v));
        }
    }
    let body = match (opt("json"), opt("data")) {
        (Some(j), _) => {
            rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json");
            Some(j.to_string().into_bytes())
        }
        (None, Some(Value::Object(form))) => {
            let mut enc = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                enc.append_pair(k, &text_of(v));
            }
            rb = rb.header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
            Some(enc.finish().into_bytes())
        }
        (None, Some(other)) => Some(text_of(other).into_bytes()),
        (None, None) => None,
    };
    if let Some(body) = body {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(invalid(format!(
                "Request body exceeds {MAX_REQUEST_BYTES} bytes"
            )));
        }
        rb = rb.body(body);
    }
    if let Some(t) = opt("timeout").and_then(Value::as_f64) {
        rb = rb.timeout(Duration::from_secs_f64(t.clamp(1.0, 60.0)));
    }
    let got = outbound.fetch(rb).await.map_err(|e| match e {
        OutboundError::Timeout(_) => (ExcType::TimeoutError, format!("Request timed out: {e}")),
        OutboundError::Invalid(m) => invalid(m),
        other => (ExcType::OSError, other.to_string()),
    })?;
    let content_type = got.content_type.clone().unwrap_or_default();
    let is_text = content_type.is_empty()
        || [
            "text/",
            "json",
            "xml",
            "javascript",
            "x-www-form-urlencoded",
        ]
        .iter()
        .any(|t| content_type.contains(t));
    let text = if is_text {
        String::from_utf8_lossy(&got.body).into_owned()
    } else {
        String::new()
    };
    let json = if content_type.contains("application/json") {
        serde_json::from_slice::<Value>(&got.body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let s = MontyObject::String;
    Ok(MontyObject::dict(vec![
        (
            s("status_code".into()),
            MontyObject::Int(i64::from(got.status)),
        ),
        (
            s("headers".into()),
            MontyObject::dict(
                got.headers
                    .iter()
                    .map(|(k, v)| (s(k.clone()), s(v.clone())))
                    .collect::<Vec<_>>(),
            ),
        ),
        (s("content".into()), MontyObject::Bytes(got.body.to_vec())),
        (s("text".into()), s(text)),
        (s("json".into()), sandbox::value::to_python(&json)),
        (
            s("is_success".into()),
            MontyObject::Bool((200..300).contains(&got.status)),
        ),
        (s("is_error".into()), MontyObject::Bool(got.status >= 400)),
    ]))
}
