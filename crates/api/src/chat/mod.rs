//! The chat widget API, `/api/chat/…`: start a session, send a message (a
//! durable job), poll the task or stream it, poll messages, upload files.
//!
//! These routes authenticate themselves (they are on the public list of the
//! router): an embed key with an allowed origin, a session token, or a team
//! API key for server-side integrations. Keyless starts are allowed only for
//! chatbots configured `public_chat: true` (the original leaves them open).
//!
//! Decisions where the original is odd: an unknown task id is a 404 (not
//! "processing" forever); a session token expires with the session's age
//! (the channel's lifetime, default 7 days), as the original's current rule.

mod message;
mod poll;
mod start;
mod task;
mod upload;

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::Error;
use domain::channels::widget::{self, WidgetChannel};
use domain::sessions::access::{self, Access, Credentials, Use};

pub use message::{__path_message, MessageAccepted, MessageRequest, message};
pub use poll::{__path_poll_messages, poll_messages};
pub use start::{__path_start, StartRequest, StartView, start};
pub use task::{__path_poll_task, __path_stream_task, poll_task, stream_task};
pub use upload::{__path_upload, MAX_UPLOAD, UploadedView, upload};

use crate::routes::Routes;
pub(super) use crate::sessions::message_view;
use crate::{ApiError, AppState};

pub fn router() -> Routes {
    Routes::new()
        .route("/api/chat/start/", post(start::start))
        .route("/api/chat/{session_id}/message/", post(message::message))
        .route("/api/chat/{session_id}/poll/", get(poll::poll_messages))
        .route(
            "/api/chat/{session_id}/{task_id}/poll/",
            get(task::poll_task),
        )
        .route(
            "/api/chat/{session_id}/{task_id}/stream/",
            get(task::stream_task),
        )
        .route(
            "/api/chat/{session_id}/upload/",
            // Room for 50 MB of files plus multipart framing.
            post(upload::upload).layer(DefaultBodyLimit::max(upload::UPLOAD_BODY_LIMIT)),
        )
}

pub(super) fn error(msg: &str) -> ApiError {
    ApiError::plain(StatusCode::BAD_REQUEST, msg)
}

pub(super) fn forbidden() -> ApiError {
    ApiError::Domain(Error::PermissionDenied)
}

pub(super) fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(super) fn api_key(h: &HeaderMap) -> Option<&str> {
    header_str(h, "x-api-key").or_else(|| {
        header_str(h, "authorization").and_then(|a| {
            let (scheme, rest) = a.split_once(char::is_whitespace)?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
    })
}

pub(super) fn origin(h: &HeaderMap) -> Option<String> {
    widget::origin_host(header_str(h, "origin"), header_str(h, "referer"))
}

/// The channel an embed key admits, with its origin checked.
pub(super) async fn embed_channel(
    state: &AppState,
    h: &HeaderMap,
    key: &str,
) -> Result<WidgetChannel, ApiError> {
    let ch = widget::by_key(&state.domain, key)
        .await?
        .ok_or(ApiError::Domain(Error::Unauthenticated(
            "Invalid widget embed key",
        )))?;
    match origin(h) {
        Some(host) if widget::domain_allowed(&ch.allowed_domains, &host) => Ok(ch),
        _ => Err(forbidden()),
    }
}

/// The TCP peer, when the server was started with connect info.
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

pub(super) fn rate_identity(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

pub fn client_ip(peer: Option<SocketAddr>) -> String {
    match peer.map(|p| p.ip()) {
        Some(std::net::IpAddr::V6(v6)) => {
            // Bucket IPv6 by /64, as one client usually owns the whole prefix.
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

/// Runs `f` under the rate limit of `identity`, adding the headers. A
/// refused credential (401 or 403) also counts against the client's
/// `credentials` bucket; a client that filled it is refused before
/// anything is checked.
pub(super) async fn limited<F>(
    state: &AppState,
    peer: Option<SocketAddr>,
    identity: String,
    f: F,
) -> Response
where
    F: std::future::Future<Output = Result<Response, ApiError>>,
{
    let refusals = rate_identity("credentials", &client_ip(peer));
    let c = state.chat_limits.peek(&refusals);
    if !c.allowed {
        return c.refusal();
    }
    let d = state.chat_limits.check(&identity);
    if !d.allowed {
        return d.refusal();
    }
    let mut r = match f.await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if matches!(r.status().as_u16(), 401 | 403) {
        state.chat_limits.check(&refusals);
    }
    d.apply(r.headers_mut());
    r
}

/// The bucket of a session-bound request: the session, when the id is one
/// (a UUID); else the client, so made-up ids cannot mint buckets.
fn session_bucket(session_id: &str, peer: Option<SocketAddr>) -> String {
    match uuid::Uuid::parse_str(session_id) {
        Ok(id) => rate_identity("session", &id.to_string()),
        Err(_) => rate_identity("ip", &client_ip(peer)),
    }
}

/// The bucket of a start: the embed key when it looks like one; else the client.
pub(super) fn start_bucket(embed_key: Option<&str>, peer: Option<SocketAddr>) -> String {
    match embed_key {
        Some(k) if (1..=64).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            rate_identity("embed", k)
        }
        _ => rate_identity("ip", &client_ip(peer)),
    }
}

/// Runs a session-bound endpoint: under the session's rate limit, once the
/// caller's access to the session is established.
pub(super) async fn on_session<F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    (session_id, usage, peer): (&str, Use, Option<SocketAddr>),
    f: F,
) -> Response
where
    F: FnOnce(AppState, Access) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let st = state.clone();
    limited(state, peer, session_bucket(session_id, peer), async move {
        let a = access(&st, headers, session_id, usage).await?;
        f(st, a).await
    })
    .await
}

/// Decides access to a session-bound endpoint from the request's credentials.
async fn access(
    state: &AppState,
    h: &HeaderMap,
    session_id: &str,
    usage: Use,
) -> Result<Access, ApiError> {
    let key = api_key(h);
    let member = match key {
        Some(_) => None,
        None => crate::auth::console_caller(state, h, usage == Use::Write).await?,
    };
    let creds = Credentials {
        api_key: key,
        member,
        embed_key: header_str(h, "x-embed-key"),
        origin_host: origin(h),
        session_token: header_str(h, "x-session-token"),
    };
    Ok(access::check(&state.domain, session_id, &creds, usage).await?)
}
