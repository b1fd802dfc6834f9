//! Absolute URLs for response bodies, built from the request's scheme and Host
//! (`X-Forwarded-Proto: https` honoured), always on the unversioned `/api/` path.

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

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
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
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let uri: &Uri = &parts.uri;
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|o| crate::routing::unversioned(o.0.path()))
            .unwrap_or_else(|| uri.path().to_string());
        Ok(BaseUrl {
            origin: format!("{scheme}://{host}"),
            path,
            query: uri.query().map(str::to_string),
        })
    }
}
