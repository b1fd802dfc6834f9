//! The HTTP plumbing shared by the provider adapters: the process-wide client,
//! sending a call with the right timeout, classifying every failure into
//! [`LlmError`] (module `errors`), and turning an SSE response into a
//! [`crate::CompletionStream`] (module `stream`).

use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;

use crate::{LlmError, ProviderConfig};

mod errors;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use errors::Ctx;
pub(crate) use stream::{Decoder, Step, Summary, send_stream};

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
/// The URL without its query string, for messages.
fn display_url(url: &reqwest::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}
