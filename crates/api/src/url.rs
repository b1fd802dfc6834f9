//! Absolute URLs for response bodies, always on the unversioned `/api/` path:
//! from the configured public URL (`--public-url`, as the original's
//! `ALLOWED_HOSTS` guards its links), else from the request's scheme
//! (`X-Forwarded-Proto: https` honoured) and a Host that is a plain host
//! name or address with an optional port (anything else reads as `localhost`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Uri, header};
use std::convert::Infallible;

use crate::routing::OriginalUri;

#[derive(Debug, Clone)]
pub struct BaseUrl {
    /// `scheme://host`, without a trailing slash.
    pub origin: String,
    /// The request's path (after the `/api/v1` alias was mapped to `/api`).
    pub path: String,
    pub query: Option<String>,
}

impl BaseUrl {
    pub fn absolute(&self, path: &str) -> String {
        format!("{}{}", self.origin, path)
    }
}

/// Whether a Host header is `name[:port]` or `[v6][:port]` and nothing else.
fn plain_host(h: &str) -> bool {
    let (host, port) = match h.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => ("v6", after),
            _ => return false,
        },
        None => match h.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => (h, ""),
        },
    };
    let port = port.strip_prefix(':').unwrap_or(port);
    let port_ok = port.is_empty() || (port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    port_ok && host_ok
}

impl FromRequestParts<crate::AppState> for BaseUrl {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded_https = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
        let scheme = if forwarded_https { "https" } else { "http" };
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .filter(|h| plain_host(h))
            .unwrap_or("localhost");
        let origin = match &state.public_url {
            Some(u) => u.to_string(),
            None => format!("{scheme}://{host}"),
        };
        let uri: &Uri = &parts.uri;
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|o| crate::routing::unversioned(o.0.path()))
            .unwrap_or_else(|| uri.path().to_string());
        Ok(BaseUrl {
            origin,
            path,
            query: uri.query().map(str::to_string),
        })
    }
}

/// A `--public-url` as every link will use it: http(s), a host, no path.
pub fn public_url(raw: &str) -> Result<String, String> {
    let u = ::url::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("{raw:?} must be http:// or https:// with a host"));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(format!("{raw:?} must have no path, query or fragment"));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_plain_names_or_addresses() {
        for ok in [
            "example.org",
            "a.b:8000",
            "127.0.0.1:80",
            "[::1]:8000",
            "localhost",
        ] {
            assert!(plain_host(ok), "{ok}");
        }
        for bad in [
            "evil.com/x",
            "a b",
            "[::1",
            "x:port",
            "a..b",
            "",
            "e.com:123456",
            "u@h",
        ] {
            assert!(!plain_host(bad), "{bad}");
        }
        assert_eq!(
            public_url("https://chat.example.org/").unwrap(),
            "https://chat.example.org"
        );
        assert!(public_url("https://chat.example.org/app").is_err());
        assert!(public_url("ftp://x").is_err());
    }
}
