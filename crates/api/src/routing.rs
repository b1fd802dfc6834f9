//! Routing rules applied once, before any route matches (spec §1.1):
//! - `/api/v1/…` is an alias of `/api/…`;
//! - routes that end with a slash answer the slashless form with a `301` to the
//!   slashed path (query kept), but only when the slashed path is a route;
//! - a method a route does not offer gets `405 {"detail": …}`.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::error::detail;

pub type App = Router;

/// The URI the client sent, before the `/api/v1` alias was mapped.
#[derive(Debug, Clone)]
pub struct OriginalUri(pub Uri);

/// The trailing-slash rules of a route table (spec §1.1): a path without
/// its trailing slash is redirected when the slashed form is a route and the
/// slashless form is not.
#[derive(Debug, Clone)]
pub struct SlashRules {
    /// Route templates as segments; `None` is a path parameter (one segment).
    templates: Vec<Vec<Option<String>>>,
}

fn segments(template: &str) -> Vec<Option<String>> {
    template
        .split('/')
        .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
        .collect()
}

impl SlashRules {
    pub fn new(paths: &[&str]) -> Self {
        SlashRules {
            templates: paths.iter().map(|p| segments(p)).collect(),
        }
    }

    /// Whether a route matches `path` (parameters match one non-empty segment).
    pub fn is_route(&self, path: &str) -> bool {
        let p: Vec<&str> = path.split('/').collect();
        self.templates.iter().any(|t| {
            t.len() == p.len()
                && t.iter().zip(&p).all(|(t, p)| match t {
                    None => !p.is_empty(),
                    Some(lit) => lit == p,
                })
        })
    }

    pub fn needs_slash_redirect(&self, path: &str) -> bool {
        !path.ends_with('/') && !self.is_route(path) && self.is_route(&format!("{path}/"))
    }
}

/// Maps the `/api/v1` alias to the canonical `/api` path.
pub fn unversioned(path: &str) -> String {
    match path.strip_prefix("/api/v1") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/api{rest}"),
        _ => path.to_string(),
    }
}

pub fn new_app(router: Router, rules: SlashRules) -> App {
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(rules),
            pre_route,
        ))
}

/// CORS applies to the chat widget API only, on its unversioned paths (spec §1.5).
fn is_cors_path(path: &str) -> bool {
    path.starts_with("/api/chat/")
}

const CORS_ALLOW_HEADERS: &str = "accept, accept-encoding, authorization, content-type, dnt, origin, user-agent, \
     x-requested-with, x-ocs-widget-version, x-embed-key, x-session-token, x-api-key";
const CORS_EXPOSE_HEADERS: &str =
    "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After";

fn add_cors(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(CORS_EXPOSE_HEADERS),
    );
}

pub(crate) async fn pre_route(
    State(rules): State<std::sync::Arc<SlashRules>>,
    req: Request,
    next: Next,
) -> Response {
    let cors = is_cors_path(req.uri().path());
    if cors
        && req.method() == axum::http::Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        // Preflight is answered before any authentication.
        let mut resp = StatusCode::OK.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("DELETE, GET, OPTIONS, PATCH, POST, PUT"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        return resp;
    }
    let mut resp = route(&rules, req, next).await;
    if cors {
        add_cors(&mut resp);
    }
    resp
}

async fn route(rules: &SlashRules, mut req: Request, next: Next) -> Response {
    let original = req.uri().clone();
    req.extensions_mut().insert(OriginalUri(original.clone()));
    let path = original.path();
    let mapped = unversioned(path);
    if rules.needs_slash_redirect(&mapped) {
        let location = match original.query() {
            Some(q) => format!("{path}/?{q}"),
            None => format!("{path}/"),
        };
        let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    if mapped != path {
        let pq = match original.query() {
            Some(q) => format!("{mapped}?{q}"),
            None => mapped,
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    let method = req.method().clone();
    let resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = resp.headers().get(header::ALLOW).cloned();
        let mut out = detail(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method \"{method}\" not allowed."),
        );
        if let Some(a) = allow {
            out.headers_mut().insert(header::ALLOW, a);
        }
        return out;
    }
    resp
}

/// Unknown routes: a plain HTML 404, as the original's framework answers.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html("<!doctype html><title>Not Found</title><h1>Not Found</h1>"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> SlashRules {
        // Building the route table needs the state's type, not a state.
        SlashRules::new(crate::routes::Routes::new().merge(all_routes()).paths())
    }

    fn all_routes() -> crate::Routes {
        crate::Routes::new()
            .merge(crate::experiments::router())
            .merge(crate::channels_api::router())
            .merge(crate::openai::router())
            .merge(crate::sessions::router())
            .merge(crate::traces::router())
            .merge(crate::participants::router())
            .merge(crate::files::router())
            .merge(crate::trigger::router())
            .merge(crate::chat::router())
            .merge(crate::telegram::router())
            .merge(crate::whatsapp::router())
            .merge(crate::files::shared_router())
            .merge(crate::health::router())
            .merge(crate::openapi::router())
    }

    #[test]
    fn slash_rules() {
        let r = rules();
        let needs_slash_redirect = |p: &str| r.needs_slash_redirect(p);
        assert!(needs_slash_redirect("/api/experiments"));
        assert!(needs_slash_redirect("/api/experiments/abc"));
        assert!(needs_slash_redirect("/api/sessions/1234.5678/tags"));
        assert!(!needs_slash_redirect("/api/experiments/"));
        assert!(!needs_slash_redirect("/api/participants"));
        assert!(!needs_slash_redirect("/api/files/1/content"));
        assert!(!needs_slash_redirect("/api/nothing"));
        // The route the hand-kept list once missed.
        assert!(needs_slash_redirect("/api/chat/s1/t1/stream"));
    }

    #[test]
    fn every_documented_path_is_a_route() {
        let r = rules();
        let doc = crate::openapi::document();
        for path in doc.paths.paths.keys() {
            // The document writes the version segment as `v{version}`; axum
            // cannot capture part of a segment, so the route takes the whole one.
            let routed = path.replace("/v{version}/", "/{version}/");
            assert!(r.is_route(&routed), "{path} is documented but not routed");
        }
    }

    #[test]
    fn alias() {
        assert_eq!(unversioned("/api/v1/experiments/"), "/api/experiments/");
        assert_eq!(unversioned("/api/v1"), "/api");
        assert_eq!(unversioned("/api/v10/x"), "/api/v10/x");
        assert_eq!(unversioned("/healthz"), "/healthz");
    }
}
