//! The HTTP plumbing shared by the provider adapters: the process-wide client,
//! sending a call with the right timeout, classifying every failure into
//! [`LlmError`], and turning an SSE response into a [`CompletionStream`].

use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::sse::{ReadError, SseEvent, SseStream};
use crate::{Completion, CompletionStream, LlmError, ProviderConfig, StreamEvent, Usage};

/// Makes rustls' `ring` backend the process default. reqwest is built without
/// a bundled provider, so this must run before any client is built; calling it
/// again (or after another provider was installed) does nothing.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP client shared by every provider client of the process.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    match builder().build() {
        Ok(client) => client,
        Err(err) => {
            // Building fails when the system has no CA bundle (slim containers):
            // Mozilla's roots still let the providers' public endpoints work.
            tracing::warn!(error = %err, "no usable system CA certificates; using bundled Mozilla roots");
            // The last resort is reqwest's plain default: this function has no
            // way to report failure, and neither step above fails in practice.
            match bundled_roots_tls().map(|tls| builder().tls_backend_preconfigured(tls).build()) {
                Some(Ok(client)) => client,
                Some(Err(err)) => {
                    tracing::error!(error = %err, "could not build the HTTP client with bundled roots");
                    reqwest::Client::new()
                }
                None => reqwest::Client::new(),
            }
        }
    }
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("chatstudio/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(32)
        .tcp_keepalive(Duration::from_secs(60))
}

fn bundled_roots_tls() -> Option<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => Some(b.with_root_certificates(roots).with_no_client_auth()),
        Err(err) => {
            tracing::error!(error = %err, "rustls rejected its default protocol versions");
            None
        }
    }
}

/// `cfg.base_url` if set (verbatim, without trailing slashes), else `default`.
pub(crate) fn base_url(cfg: &ProviderConfig, default: &str) -> String {
    cfg.base_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_owned()
}

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

    fn idle_timeout(&self) -> LlmError {
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

/// Headers for one call: the adapter's own (auth, versions), then the configured
/// extra headers, which win on a name clash (e.g. Azure's `api-key`). All are
/// marked sensitive so they never appear in debug output.
pub(crate) fn headers(
    ctx: &Ctx,
    own: &[(&'static str, &str)],
    cfg: &ProviderConfig,
) -> Result<HeaderMap, LlmError> {
    let mut map = HeaderMap::new();
    // Only the API key in these can be malformed: the rest are constants.
    for (name, value) in own {
        let mut v = HeaderValue::from_str(value).map_err(|_| LlmError::Config {
            message: format!(
                "the {} API key contains characters not allowed in an HTTP header",
                ctx.provider
            ),
            status: None,
        })?;
        v.set_sensitive(true);
        map.insert(HeaderName::from_static(name), v);
    }
    for (name, value) in &cfg.headers {
        let invalid = || LlmError::Config {
            message: format!(
                "invalid extra header `{}` for {}",
                ctx.redact(name),
                ctx.provider
            ),
            status: None,
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid())?;
        let mut v = HeaderValue::from_str(value.trim()).map_err(|_| invalid())?;
        v.set_sensitive(true);
        map.insert(name, v);
    }
    Ok(map)
}

/// Sends a plain call and parses its JSON answer; `ctx.timeout` bounds the
/// whole exchange, body included.
pub(crate) async fn send_json<T: DeserializeOwned>(
    ctx: &Ctx,
    req: reqwest::RequestBuilder,
) -> Result<T, LlmError> {
    let resp = req
        .timeout(ctx.timeout)
        .send()
        .await
        .map_err(|e| ctx.transport_error(e))?;
    let status = resp.status();
    if !status.is_success() {
        let headers = resp.headers().clone();
        let url = display_url(resp.url());
        // The status alone still classifies the failure if the body is lost.
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        return Err(ctx.status_error(status.as_u16(), &headers, &body, &url));
    }
    let body = resp.bytes().await.map_err(|e| ctx.transport_error(e))?;
    parse_json(ctx, &body)
}

pub(crate) fn parse_json<T: DeserializeOwned>(ctx: &Ctx, body: &[u8]) -> Result<T, LlmError> {
    serde_json::from_slice(body).map_err(|e| ctx.invalid(format_args!("malformed JSON: {e}")))
}

/// Starts a streamed call. `ctx.timeout` bounds the wait for the response
/// head here, and each wait for a chunk afterwards.
pub(crate) async fn send_stream<D: Decoder>(
    ctx: Ctx,
    req: reqwest::RequestBuilder,
    decoder: D,
) -> Result<CompletionStream, LlmError> {
    let resp = tokio::time::timeout(ctx.timeout, req.send())
        .await
        .map_err(|_| ctx.timed_out())?
        .map_err(|e| ctx.transport_error(e))?;
    let status = resp.status();
    if !status.is_success() {
        let headers = resp.headers().clone();
        let url = display_url(resp.url());
        let body = match tokio::time::timeout(ctx.timeout, resp.bytes()).await {
            Ok(Ok(b)) => b.to_vec(),
            _ => Vec::new(),
        };
        return Err(ctx.status_error(status.as_u16(), &headers, &body, &url));
    }
    let driver = Driver {
        sse: SseStream::new(Box::pin(resp.bytes_stream())),
        decoder,
        ctx,
        text: String::new(),
        finished: false,
    };
    Ok(Box::pin(futures_util::stream::unfold(
        driver,
        |mut d| async move {
            if d.finished {
                return None;
            }
            let item = d.next_item().await;
            d.finished = !matches!(item, Ok(StreamEvent::Delta(_)));
            Some((item, d))
        },
    )))
}

/// The URL without its query string, for messages.
fn display_url(url: &reqwest::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// What one provider's stream event means.
pub(crate) enum Step {
    /// A piece of the reply (may be empty).
    Text(String),
    /// Nothing for the caller (pings, block starts, usage updates).
    Skip,
    /// The provider's explicit end of stream.
    End,
}

/// The final facts of a stream, gathered by a [`Decoder`].
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub usage: Usage,
    pub model: Option<String>,
    pub finish_reason: Option<String>,
}

/// A provider's streaming wire format.
pub(crate) trait Decoder: Send + 'static {
    fn event(&mut self, ev: SseEvent) -> Result<Step, LlmError>;
    /// The body ended without an `End` step: `Ok` if that is a normal end
    /// for this provider.
    fn eof(&mut self) -> Result<(), LlmError>;
    fn summary(&mut self) -> Summary;
}

struct Driver<S, D> {
    sse: SseStream<S>,
    decoder: D,
    ctx: Ctx,
    text: String,
    finished: bool,
}

impl<S, B, D> Driver<S, D>
where
    S: futures_util::Stream<Item = Result<B, reqwest::Error>> + Unpin,
    B: AsRef<[u8]>,
    D: Decoder,
{
    async fn next_item(&mut self) -> Result<StreamEvent, LlmError> {
        loop {
            let ev = match self.sse.next_event(self.ctx.timeout).await {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    self.decoder.eof()?;
                    return Ok(self.done());
                }
                Err(ReadError::Idle) => return Err(self.ctx.idle_timeout()),
                Err(ReadError::Body(e)) => return Err(self.ctx.transport_error(e)),
            };
            match self.decoder.event(ev)? {
                Step::Text(t) if !t.is_empty() => {
                    self.text.push_str(&t);
                    return Ok(StreamEvent::Delta(t));
                }
                Step::Text(_) | Step::Skip => {}
                Step::End => return Ok(self.done()),
            }
        }
    }

    fn done(&mut self) -> StreamEvent {
        let s = self.decoder.summary();
        StreamEvent::Done(Completion {
            text: std::mem::take(&mut self.text),
            usage: s.usage,
            model: s.model.unwrap_or_else(|| self.ctx.model.clone()),
            finish_reason: s.finish_reason,
        })
    }
}

#[cfg(test)]
mod tests;
