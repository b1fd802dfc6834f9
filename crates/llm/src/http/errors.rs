//! Classifying every failure of a provider call into [`LlmError`]: transport
//! errors, non-2xx answers (with the providers' error bodies and wait hints),
//! and errors reported inside a stream.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::{LlmError, ProviderConfig};

/// What an adapter call needs to report its failures: which provider, which
/// model, the timeout in force, and the secret that must never show up in a
/// message.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub provider: &'static str,
    pub model: String,
    pub timeout: Duration,
    api_key: Option<String>,
}

impl Ctx {
    pub fn new(provider: &'static str, cfg: &ProviderConfig, model: &str) -> Self {
        Self {
            provider,
            model: model.to_owned(),
            timeout: cfg.timeout,
            api_key: cfg.api_key.clone().filter(|k| !k.is_empty()),
        }
    }

    /// Removes the API key from text that came from elsewhere (a provider's
    /// error message may quote it back).
    pub fn redact(&self, text: &str) -> String {
        match &self.api_key {
            // A key of a character or two would shred every message, and
            // cannot be a real secret anyway.
            Some(key) if key.len() >= 4 => text.replace(key.as_str(), "<redacted>"),
            _ => text.to_owned(),
        }
    }

    pub fn timed_out(&self) -> LlmError {
        LlmError::Retryable {
            message: format!(
                "{} did not answer within {}",
                self.provider,
                fmt_duration(self.timeout)
            ),
            status: None,
            retry_after: None,
        }
    }

    pub(super) fn idle_timeout(&self) -> LlmError {
        LlmError::Retryable {
            message: format!(
                "{} stream stalled: nothing received for {}",
                self.provider,
                fmt_duration(self.timeout)
            ),
            status: None,
            retry_after: None,
        }
    }

    pub fn invalid(&self, what: impl std::fmt::Display) -> LlmError {
        LlmError::InvalidResponse {
            message: self.redact(&format!("{}: {what}", self.provider)),
        }
    }

    /// A failure below HTTP: no connection, a reset, a timeout, a bad URL.
    pub fn transport_error(&self, err: reqwest::Error) -> LlmError {
        // Host and port only: a configured URL may carry credentials.
        let host = err.url().and_then(|u| {
            let host = u.host_str()?;
            Some(match u.port() {
                Some(port) => format!(" at {host}:{port}"),
                None => format!(" at {host}"),
            })
        });
        let host = host.unwrap_or_default();
        let (builder, redirect, connect, timeout) = (
            err.is_builder(),
            err.is_redirect(),
            err.is_connect(),
            err.is_timeout(),
        );
        let detail = self.redact(&error_chain(&err.without_url()));
        let p = self.provider;
        if builder {
            return LlmError::Config {
                message: format!("cannot send a request to {p}{host}: {detail}"),
                status: None,
            };
        }
        if redirect {
            return LlmError::Config {
                message: format!("{p}{host} redirected too often: {detail}"),
                status: None,
            };
        }
        // Checked before `timeout`: a connect timeout is both, and the
        // whole-call timeout message would mislead.
        let message = if connect {
            format!("could not connect to {p}{host}: {detail}")
        } else if timeout {
            return self.timed_out();
        } else {
            // Without decompression enabled, reqwest's body and decode errors
            // are broken connections too.
            format!("connection to {p}{host} failed: {detail}")
        };
        LlmError::Retryable {
            message,
            status: None,
            retry_after: None,
        }
    }

    /// Classifies a non-2xx answer.
    pub fn status_error(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        url: &str,
    ) -> LlmError {
        let info = ErrorInfo::parse(body);
        let detail = self.redact(info.message.as_deref().unwrap_or(""));
        let with_detail = |s: String| {
            if detail.is_empty() {
                s
            } else {
                format!("{s}: {detail}")
            }
        };
        let p = self.provider;
        match status {
            401 | 403 => LlmError::Config {
                message: format!(
                    "authentication failed: check the provider's API key ({p} answered HTTP {status})"
                ),
                status: Some(status),
            },
            // Gemini reports a wrong key as a 400.
            400 if info.is_invalid_api_key() => LlmError::Config {
                message: format!(
                    "authentication failed: check the provider's API key ({p} answered HTTP {status})"
                ),
                status: Some(status),
            },
            404 => LlmError::Config {
                message: with_detail(format!(
                    "unknown model or endpoint: {p} answered HTTP 404 for model `{}` at {}",
                    self.model,
                    self.redact(url)
                )),
                status: Some(status),
            },
            429 if info.is_quota_exhausted() => LlmError::Config {
                message: with_detail(format!("{p} quota exhausted (HTTP 429)")),
                status: Some(status),
            },
            429 => LlmError::Retryable {
                message: with_detail(format!("rate limited by {p} (HTTP 429)")),
                status: Some(status),
                retry_after: retry_after(headers).or(info.retry_delay),
            },
            408 | 425 => LlmError::Retryable {
                message: with_detail(format!("{p} answered HTTP {status}")),
                status: Some(status),
                retry_after: retry_after(headers),
            },
            500..=599 => LlmError::Retryable {
                message: with_detail(format!("{p} server error (HTTP {status})")),
                status: Some(status),
                retry_after: retry_after(headers),
            },
            400 | 422 => LlmError::Config {
                message: with_detail(format!("{p} rejected the request (HTTP {status})")),
                status: Some(status),
            },
            400..=499 => LlmError::Config {
                message: with_detail(format!("{p} answered HTTP {status}")),
                status: Some(status),
            },
            _ => LlmError::InvalidResponse {
                message: with_detail(format!("{p} answered unexpected HTTP {status}")),
            },
        }
    }

    /// An error reported inside a stream (Anthropic's `error` event, an
    /// OpenAI or Gemini chunk carrying `error`), classified by its type.
    pub fn event_error(&self, error: &Value) -> LlmError {
        let info = ErrorInfo::from_error_value(error);
        let detail = self.redact(info.message.as_deref().unwrap_or("no details"));
        let kind = info.kind.clone().unwrap_or_default();
        let message = if kind.is_empty() {
            format!("{} reported an error mid-stream: {detail}", self.provider)
        } else {
            format!("{} reported {kind} mid-stream: {detail}", self.provider)
        };
        let permanent = [
            "invalid_request_error",
            "authentication_error",
            "permission_error",
            "not_found_error",
            "insufficient_quota",
            "INVALID_ARGUMENT",
            "PERMISSION_DENIED",
            "UNAUTHENTICATED",
            "NOT_FOUND",
            "FAILED_PRECONDITION",
        ];
        if permanent.contains(&kind.as_str()) {
            LlmError::Config {
                message,
                status: None,
            }
        } else {
            LlmError::Retryable {
                message,
                status: None,
                retry_after: None,
            }
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper and reqwest often repeat the cause in their own message.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The parts of a provider's error body we act on. All three providers nest
/// them under `error` (`message`, plus `type`/`code`/`status`); some
/// OpenAI-compatible servers send `{"error": "text"}`.
#[derive(Debug, Default)]
struct ErrorInfo {
    message: Option<String>,
    kind: Option<String>,
    code: Option<String>,
    reasons: Vec<String>,
    retry_delay: Option<Duration>,
}

impl ErrorInfo {
    fn parse(body: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => match v.get("error") {
                Some(e) => Self::from_error_value(e),
                None => Self {
                    message: v.get("message").and_then(Value::as_str).map(str::to_owned),
                    ..Self::default()
                },
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                Self {
                    message: (!text.is_empty()).then(|| truncate(text, 300)),
                    ..Self::default()
                }
            }
        }
    }

    fn from_error_value(e: &Value) -> Self {
        if let Some(s) = e.as_str() {
            return Self {
                message: Some(s.to_owned()),
                ..Self::default()
            };
        }
        let text = |k: &str| -> Option<String> {
            match e.get(k)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let details = e.get("details").and_then(Value::as_array);
        let reasons = details
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("reason").and_then(Value::as_str).map(str::to_owned))
            .collect();
        // Gemini puts its retry hint in a RetryInfo detail ("37s").
        let retry_delay = details
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("retryDelay").and_then(Value::as_str))
            .find_map(|s| parse_seconds(s.strip_suffix('s').unwrap_or(s)));
        Self {
            message: text("message"),
            kind: text("type").or_else(|| text("status")),
            code: text("code"),
            reasons,
            retry_delay,
        }
    }

    fn is_quota_exhausted(&self) -> bool {
        self.code.as_deref() == Some("insufficient_quota")
            || self.kind.as_deref() == Some("insufficient_quota")
    }

    fn is_invalid_api_key(&self) -> bool {
        self.reasons.iter().any(|r| r == "API_KEY_INVALID")
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn parse_seconds(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// The server's wait hint: `retry-after-ms` (Azure/OpenAI), else
/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(parse_seconds) {
        return Some(ms / 1000);
    }
    let value = get("retry-after")?;
    if let Some(d) = parse_seconds(value) {
        return Some(d);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}
