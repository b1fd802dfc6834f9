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

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::channels::widget::{self, WidgetChannel};
use domain::files::uploads::{self, Staged};
use domain::jobs::{self, ChatTurn, TaskState};
use domain::messages::{self, Incoming, TranscriptMessage, transcript};
use domain::sessions::access::{self, Access, Credentials};
use domain::sessions::{self, Caller, SessionStatus, Start};
use domain::{Error, TeamId, chatbots};
use engine::worker::{DEFAULT_ERROR, StreamMsg};
use futures_util::StreamExt;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::body::JsonObject;
use crate::routes::Routes;
use crate::sessions::{FileView, MessageView};
use crate::url::BaseUrl;
use crate::views::{datetime, query_pairs, query_param};
use crate::{ApiError, AppState};

pub const MAX_UPLOAD: usize = 50 * 1024 * 1024;
/// Room for the 50 MB limit to be crossed and reported as such.
const UPLOAD_BODY_LIMIT: usize = 2 * MAX_UPLOAD + 1024 * 1024;
const MAX_POLL_LIMIT: u64 = 1000;

pub fn router() -> Routes {
    Routes::new()
        .route("/api/chat/start/", post(start))
        .route("/api/chat/{session_id}/message/", post(message))
        .route("/api/chat/{session_id}/poll/", get(poll_messages))
        .route("/api/chat/{session_id}/{task_id}/poll/", get(poll_task))
        .route("/api/chat/{session_id}/{task_id}/stream/", get(stream_task))
        .route(
            "/api/chat/{session_id}/upload/",
            // Room for 50 MB of files plus multipart framing.
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
}

fn error(msg: &str) -> ApiError {
    ApiError::plain(StatusCode::BAD_REQUEST, msg)
}

fn forbidden() -> ApiError {
    ApiError::Domain(Error::PermissionDenied)
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn api_key(h: &HeaderMap) -> Option<&str> {
    header_str(h, "x-api-key").or_else(|| {
        header_str(h, "authorization").and_then(|a| {
            let (scheme, rest) = a.split_once(char::is_whitespace)?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
    })
}

fn origin(h: &HeaderMap) -> Option<String> {
    widget::origin_host(header_str(h, "origin"), header_str(h, "referer"))
}

/// The channel an embed key admits, with its origin checked.
async fn embed_channel(
    state: &AppState,
    h: &HeaderMap,
    key: &str,
) -> Result<WidgetChannel, ApiError> {
    let ch = widget::by_key(&state.domain.db.read, key)
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

fn rate_identity(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

fn client_ip(peer: Option<SocketAddr>) -> String {
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

/// Runs `f` under the rate limit of `identity`, adding the headers.
async fn limited<F>(state: &AppState, identity: String, f: F) -> Response
where
    F: std::future::Future<Output = Result<Response, ApiError>>,
{
    let d = state.chat_limits.check(&identity);
    if !d.allowed {
        return d.refusal();
    }
    let mut r = match f.await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    d.apply(r.headers_mut());
    r
}

// ---------- start ----------

#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = ChatStartSessionResponse)]
pub struct StartView {
    pub session_id: String,
    pub session_token: Option<String>,
    #[schema(value_type = Object)]
    pub chatbot: Value,
    pub participant: crate::sessions::ParticipantView,
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(as = ChatStartSessionRequest)]
#[allow(dead_code)]
pub struct StartDoc {
    chatbot_id: uuid::Uuid,
    version_number: Option<i32>,
    #[schema(value_type = Object)]
    session_data: Option<Value>,
    participant_remote_id: Option<String>,
    participant_name: Option<String>,
}

fn parse_start(body: &JsonObject, referer: Option<&str>) -> Result<Start, Error> {
    let mut errors = serde_json::Map::new();
    let chatbot_id = match body.0.get("chatbot_id") {
        None => {
            errors.insert("chatbot_id".into(), json!(["This field is required."]));
            None
        }
        Some(Value::Null) => {
            errors.insert("chatbot_id".into(), json!(["This field may not be null."]));
            None
        }
        Some(v) => match v
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
        {
            Some(u) => Some(u),
            None => {
                errors.insert("chatbot_id".into(), json!(["Must be a valid UUID."]));
                None
            }
        },
    };
    let version_number = match body.0.get("version_number") {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
        {
            Some(n) => Some(n),
            None => {
                errors.insert(
                    "version_number".into(),
                    json!(["A valid integer is required."]),
                );
                None
            }
        },
    };
    let session_data = match body.0.get("session_data") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            errors.insert(
                "session_data".into(),
                json!(["Expected a dictionary of items."]),
            );
            None
        }
    };
    let mut text = |field: &str| -> Option<String> {
        match body.0.get(field) {
            None => None,
            Some(Value::Null) => {
                errors.insert(field.into(), json!(["This field may not be null."]));
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.insert(field.into(), json!(["This field may not be blank."]));
                None
            }
            Some(Value::String(s)) if s.trim().chars().count() > 255 => {
                errors.insert(
                    field.into(),
                    json!(["Ensure this field has no more than 255 characters."]),
                );
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => {
                errors.insert(field.into(), json!(["Not a valid string."]));
                None
            }
        }
    };
    let participant_remote_id = text("participant_remote_id");
    let participant_name = text("participant_name");
    if !errors.is_empty() {
        return Err(Error::Validation(Value::Object(errors)));
    }
    let embed_source = referer
        .filter(|r| {
            (r.starts_with("http://") || r.starts_with("https://"))
                && widget::origin_host(None, Some(r)).is_some()
        })
        .map(str::to_string);
    Ok(Start {
        chatbot_id: chatbot_id
            .ok_or_else(|| Error::field("chatbot_id", "This field is required."))?,
        version_number,
        session_data,
        participant_remote_id,
        participant_name,
        embed_source,
    })
}

async fn chatbot_view(
    state: &AppState,
    base: &BaseUrl,
    team_id: TeamId,
    id: uuid::Uuid,
) -> Result<Value, ApiError> {
    let db = &state.domain.db.read;
    match chatbots::get(db, team_id, id).await {
        Ok(bot) => Ok(json!({
            "id": bot.id, "name": bot.name,
            "url": base.absolute(&format!("/api/experiments/{}/", bot.id)),
            "version_number": bot.version_number,
            "versions": bot.versions.iter().map(|v| json!({
                "name": v.name, "version_number": v.version_number,
                "is_default_version": v.is_default_version, "version_description": v.version_description,
            })).collect::<Vec<_>>(),
        })),
        // A selected snapshot is shown as itself, without versions.
        Err(_) => {
            let r = chatbots::find_row(db, team_id, id).await?;
            Ok(json!({
                "id": r.public_id, "name": r.name,
                "url": base.absolute(&format!("/api/experiments/{}/", r.public_id)),
                "version_number": r.version_number, "versions": [],
            }))
        }
    }
}

/// Start a chat session
#[utoipa::path(
    post,
    path = "/api/chat/start/",
    operation_id = "chat_start_session",
    tag = "Chat",
    request_body = StartDoc,
    responses((status = 201, body = StartView)),
    security((), ("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    base: BaseUrl,
    body: JsonObject,
) -> Response {
    let identity = match header_str(&headers, "x-embed-key") {
        Some(k) => rate_identity("embed", k),
        None => rate_identity("ip", &client_ip(peer)),
    };
    let st = state.clone();
    limited(&state, identity, async move {
        let caller = if let Some(key) = api_key(&headers) {
            let ctx = domain::auth::authenticate_api_key(&st.domain.db.read, key).await?;
            Caller::Member {
                team_id: ctx.team_id,
                user_id: ctx.user_id,
            }
        } else if let Some(key) = header_str(&headers, "x-embed-key") {
            if body.0.get("chatbot_id").is_none() {
                return Err(ApiError::Domain(Error::BadRequest(
                    "Experiment ID required for embedded widget authentication".into(),
                )));
            }
            Caller::Widget(embed_channel(&st, &headers, key).await?)
        } else {
            Caller::Anonymous
        };
        let s = parse_start(&body, header_str(&headers, "referer"))?;
        let started = sessions::start(&st.domain, caller, s).await?;
        let view = StartView {
            chatbot: chatbot_view(&st, &base, started.team_id, started.chatbot_public_id).await?,
            session_id: started.session_external_id,
            session_token: started.session_token,
            participant: crate::sessions::ParticipantView {
                identifier: started.participant_identifier,
                remote_id: started.participant_remote_id,
            },
        };
        Ok((StatusCode::CREATED, Json(view)).into_response())
    })
    .await
}

// ---------- session access ----------

/// Decides access to a session-bound endpoint from the request's credentials.
async fn access(state: &AppState, h: &HeaderMap, session_id: &str) -> Result<Access, ApiError> {
    let creds = Credentials {
        api_key: api_key(h),
        embed_key: header_str(h, "x-embed-key"),
        origin_host: origin(h),
        session_token: header_str(h, "x-session-token"),
    };
    Ok(access::check(&state.domain, session_id, &creds).await?)
}

fn message_view(base: &BaseUrl, m: TranscriptMessage) -> MessageView {
    MessageView {
        created_at: datetime(m.created_at),
        role: m.role.api_name().to_string(),
        content: m.content,
        metadata: m.metadata,
        tags: m.tags,
        attachments: m
            .attachments
            .into_iter()
            .map(|a| FileView {
                content_url: base.absolute(&format!("/api/files/{}/content", a.id)),
                name: a.name,
                content_type: a.content_type,
                size: a.size,
            })
            .collect(),
    }
}

// ---------- message ----------

#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(as = ChatSendMessageRequestWithAttachments)]
#[allow(dead_code)]
pub struct MessageDoc {
    message: String,
    #[schema(value_type = Object)]
    context: Option<Value>,
    attachment_ids: Option<Vec<i64>>,
    version_number: Option<i32>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = ChatSendMessageResponse)]
pub struct MessageAccepted {
    pub task_id: String,
    pub status: String,
}

fn parse_incoming(body: &JsonObject) -> Result<Incoming, Error> {
    let mut errors = serde_json::Map::new();
    let text = match body.0.get("message") {
        None => {
            errors.insert("message".into(), json!(["This field is required."]));
            String::new()
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.insert("message".into(), json!(["This field may not be blank."]));
            String::new()
        }
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Null) => {
            errors.insert("message".into(), json!(["This field may not be null."]));
            String::new()
        }
        Some(_) => {
            errors.insert("message".into(), json!(["Not a valid string."]));
            String::new()
        }
    };
    let context = match body.0.get("context") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            errors.insert("context".into(), json!(["Expected a dictionary of items."]));
            None
        }
    };
    let attachment_ids = match body.0.get("attachment_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let ids: Vec<Option<i64>> = a.iter().map(Value::as_i64).collect();
            if ids.iter().any(Option::is_none) {
                errors.insert(
                    "attachment_ids".into(),
                    json!(["A valid integer is required."]),
                );
            }
            ids.into_iter().flatten().collect()
        }
        Some(_) => {
            errors.insert(
                "attachment_ids".into(),
                json!(["Expected a list of items."]),
            );
            Vec::new()
        }
    };
    let version_number = match body.0.get("version_number") {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
        {
            Some(n) => Some(n),
            None => {
                errors.insert(
                    "version_number".into(),
                    json!(["A valid integer is required."]),
                );
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(Error::Validation(Value::Object(errors)));
    }
    Ok(Incoming {
        text,
        context,
        attachment_ids,
        version_number,
    })
}

/// Send a message
#[utoipa::path(
    post,
    path = "/api/chat/{session_id}/message/",
    operation_id = "chat_send_message",
    tag = "Chat",
    params(("session_id" = String, Path)),
    request_body = MessageDoc,
    responses((status = 202, body = MessageAccepted)),
    security(("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    body: JsonObject,
) -> Response {
    let st = state.clone();
    limited(&state, rate_identity("session", &session_id), async move {
        let a = access(&st, &headers, &session_id).await?;
        let m = parse_incoming(&body)?;
        let task = messages::accept(&st.domain, &a.session, a.status, a.member, m).await?;
        Ok((
            StatusCode::ACCEPTED,
            Json(MessageAccepted {
                task_id: task.to_string(),
                status: "processing".into(),
            }),
        )
            .into_response())
    })
    .await
}

// ---------- task poll ----------

/// The state of a chat task as the poll and stream endpoints report it.
async fn task_state(
    state: &AppState,
    base: &BaseUrl,
    a: &Access,
    task_id: &str,
) -> Result<(StatusCode, Value, bool), ApiError> {
    let not_found = || ApiError::not_found("Not found.");
    let task = uuid::Uuid::parse_str(task_id).map_err(|_| not_found())?;
    let (session, task) = jobs::task::<ChatTurn, _>(&state.domain.db.read, task)
        .await?
        .ok_or_else(not_found)?;
    if session != Some(a.session.id) {
        return Err(not_found());
    }
    let failed = |msg: &str| {
        (
            StatusCode::BAD_REQUEST,
            json!({"error": msg, "status": "error"}),
            true,
        )
    };
    Ok(match task {
        TaskState::Pending => (
            StatusCode::OK,
            json!({"message": null, "status": "processing"}),
            false,
        ),
        TaskState::Succeeded(out) => {
            let message = match out.message_id {
                Some(mid) => transcript::one(&state.domain, a.session.team_id, a.session.id, mid)
                    .await?
                    .map(|m| message_view(base, m)),
                None => None,
            };
            match (message, Some(out.response).filter(|r| !r.is_empty())) {
                (Some(m), _) => (
                    StatusCode::OK,
                    json!({"message": m, "status": "complete"}),
                    true,
                ),
                (None, Some(text)) => {
                    let m = MessageView {
                        created_at: datetime(chrono::Utc::now()),
                        role: "assistant".into(),
                        content: text,
                        metadata: json!({}),
                        tags: Vec::new(),
                        attachments: Vec::new(),
                    };
                    (
                        StatusCode::OK,
                        json!({"message": m, "status": "complete"}),
                        true,
                    )
                }
                (None, None) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "Unknown error"}),
                    true,
                ),
            }
        }
        TaskState::Failed(f) if f.user_facing_error => failed(&f.error),
        TaskState::Failed(_) | TaskState::Dead => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": DEFAULT_ERROR, "status": "error"}),
            true,
        ),
    })
}

/// Poll a message task
#[utoipa::path(
    get,
    path = "/api/chat/{session_id}/{task_id}/poll/",
    operation_id = "chat_poll_task_response",
    tag = "Chat",
    params(("session_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "processing or complete"), (status = 400), (status = 404), (status = 500)),
    security(("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn poll_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    base: BaseUrl,
    Path((session_id, task_id)): Path<(String, String)>,
) -> Response {
    let st = state.clone();
    limited(&state, rate_identity("session", &session_id), async move {
        let a = access(&st, &headers, &session_id).await?;
        let (code, body, _) = task_state(&st, &base, &a, &task_id).await?;
        Ok((code, Json(body)).into_response())
    })
    .await
}

fn sse(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Stream a message task (beyond the original): `delta` events as the reply
/// is generated, then one `complete` (or `error`) event with the final state.
#[utoipa::path(
    get,
    path = "/api/chat/{session_id}/{task_id}/stream/",
    operation_id = "chat_stream_task_response",
    tag = "Chat",
    params(("session_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", description = "delta events, then complete or error")),
    security(("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn stream_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    base: BaseUrl,
    Path((session_id, task_id)): Path<(String, String)>,
) -> Response {
    let st = state.clone();
    limited(&state, rate_identity("session", &session_id), async move {
        let a = access(&st, &headers, &session_id).await?;
        // Validates the task and its session before any byte is sent.
        task_state(&st, &base, &a, &task_id).await?;
        let task = uuid::Uuid::parse_str(&task_id)
            .map_err(|_| ApiError::Domain(Error::not_found("Not found.")))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
        let st2 = st.clone();
        tokio::spawn(async move {
            if let Some(mut sub) = st2.engine.streams.subscribe(task) {
                loop {
                    match sub.recv().await {
                        Ok(StreamMsg::Delta(d)) => {
                            if tx.send(sse("delta", &json!({"content": d}))).await.is_err() {
                                return;
                            }
                        }
                        Ok(StreamMsg::Done)
                        | Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    }
                }
            }
            // The final state, from the database: also for turns running in another process.
            for _ in 0..3000 {
                match task_state(&st2, &base, &a, &task_id).await {
                    Ok((_, body, true)) => {
                        let event = if body.get("status") == Some(&json!("complete")) {
                            "complete"
                        } else {
                            "error"
                        };
                        let _ = tx.send(sse(event, &body)).await;
                        return;
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    Err(_) => return,
                }
            }
        });
        let body = Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>),
        );
        Ok((
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response())
    })
    .await
}

// ---------- message poll ----------

/// Poll messages
#[utoipa::path(
    get,
    path = "/api/chat/{session_id}/poll/",
    operation_id = "chat_poll_response",
    tag = "Chat",
    params(
        ("session_id" = String, Path),
        ("since" = Option<String>, Query, description = "Only messages created strictly after this ISO 8601 time"),
        ("limit" = Option<i64>, Query, description = "At most this many messages (default 50)"),
    ),
    responses((status = 200, description = "messages, has_more, session_status")),
    security(("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn poll_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    base: BaseUrl,
    Path(session_id): Path<String>,
) -> Response {
    let st = state.clone();
    limited(&state, rate_identity("session", &session_id), async move {
        let a = access(&st, &headers, &session_id).await?;
        let pairs = query_pairs(base.query.as_deref());
        let since = match query_param(&pairs, "since").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                crate::participants::parse_datetime(&s.replace(' ', "+"))
                    .ok_or_else(|| error("Invalid 'since' parameter format. Use ISO format."))?,
            ),
        };
        let limit = match query_param(&pairs, "limit").filter(|s| !s.is_empty()) {
            None => 50,
            Some(l) => l
                .parse::<u64>()
                .map_err(|_| error("Invalid 'limit' parameter: use a non-negative integer."))?
                .min(MAX_POLL_LIMIT),
        };
        let (msgs, has_more) =
            transcript::since(&st.domain, a.session.team_id, a.session.id, since, limit).await?;
        let messages: Vec<MessageView> = msgs.into_iter().map(|m| message_view(&base, m)).collect();
        Ok(Json(json!({
            "messages": messages,
            "has_more": has_more,
            "session_status": if a.status == SessionStatus::Complete { "ended" } else { "active" },
        }))
        .into_response())
    })
    .await
}

// ---------- upload ----------

const ALLOWED_EXTENSIONS: &[&str] = &[
    ".txt", ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".csv", ".jpg", ".jpeg", ".png", ".gif",
    ".webp", ".mp4", ".mov", ".avi", ".mp3", ".wav", ".html", ".htm", ".css", ".js", ".xml", ".md",
    ".ics", ".vcf", ".rtf", ".tsv", ".yaml", ".yml", ".py", ".c",
];
const BLOCKED_IMAGES: &[&str] = &[".svg", ".svgz", ".bmp", ".tif", ".tiff"];
const ALLOWED_IMAGES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
];

fn extension(name: &str) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => name[i..].to_ascii_lowercase(),
        _ => String::new(),
    }
}

fn unsupported_image(name: &str) -> String {
    format!(
        "The image `{name}` is not a supported image type. Supported types: GIF, HEIC, HEIF, JPEG, PNG, WEBP."
    )
}

/// The content type from the bytes (magic numbers, SVG sniffed by hand), else
/// from the name, else octet-stream.
fn sniff(name: &str, bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(2048)];
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if (t.starts_with("<?xml") || t.starts_with("<svg") || t.starts_with("<!DOCTYPE svg"))
        && t.contains("<svg")
    {
        return "image/svg+xml".into();
    }
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
        (b"%PDF-", "application/pdf"),
    ];
    for (magic, mime) in MAGIC {
        if head.starts_with(magic) {
            return (*mime).into();
        }
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return "image/webp".into();
    }
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .to_string()
}

#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = UploadedFile)]
pub struct UploadedView {
    pub id: i64,
    pub name: String,
    pub size: i64,
    pub content_type: String,
}

/// Upload files
#[utoipa::path(
    post,
    path = "/api/chat/{session_id}/upload/",
    operation_id = "chat_upload_file",
    tag = "Chat",
    params(("session_id" = String, Path)),
    request_body(content_type = "multipart/form-data", description = "`files` parts (50 MB each and in total)"),
    responses((status = 201, description = "the stored files")),
    security(("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let st = state.clone();
    limited(&state, rate_identity("session", &session_id), async move {
        let a = access(&st, &headers, &session_id).await?;
        let mut multipart = multipart.map_err(|_| {
            let ct = header_str(&headers, "content-type").unwrap_or("");
            ApiError::Detail(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Unsupported media type \"{ct}\" in request."),
            )
        })?;
        if a.status == SessionStatus::Complete {
            return Err(error("Session has ended"));
        }
        let (mut staged, mut name_field, mut remote_field) =
            (Vec::<Staged>::new(), String::new(), String::new());
        let mut total = 0usize;
        let mut first_error: Option<String> = None;
        let outcome: Result<(), ApiError> = async {
            while let Some(mut field) = multipart
                .next_field()
                .await
                .map_err(|e| error(&format!("Malformed upload: {e}")))?
            {
                match field.name().unwrap_or("") {
                    "files" => {
                        let name = field.file_name().unwrap_or("upload").to_string();
                        let claimed = field
                            .content_type()
                            .unwrap_or("application/octet-stream")
                            .to_string();
                        // Bytes go to the store as they arrive; the first 2 KB are kept to sniff the type.
                        let mut put = st.domain.files.begin(a.session.team_id, &name).await?;
                        let mut head = Vec::new();
                        let mut too_big = false;
                        while let Some(chunk) = field
                            .chunk()
                            .await
                            .map_err(|e| error(&format!("Malformed upload: {e}")))?
                        {
                            if put.size + chunk.len() > MAX_UPLOAD {
                                too_big = true;
                                break;
                            }
                            if head.len() < 2048 {
                                head.extend_from_slice(
                                    &chunk[..chunk.len().min(2048 - head.len())],
                                );
                            }
                            put.write(&chunk).await?;
                        }
                        let size = put.size;
                        let ext = extension(&name);
                        let sniffed = sniff(&name, &head);
                        let problem = if too_big {
                            Some(format!("File '{name}' exceeds maximum size of 50MB"))
                        } else if BLOCKED_IMAGES.contains(&ext.as_str()) {
                            Some(unsupported_image(&name))
                        } else if !claimed.starts_with("text/")
                            && !ALLOWED_EXTENSIONS.contains(&ext.as_str())
                        {
                            Some(format!(
                                "File type '{ext}' is not supported. Allowed types: {}",
                                ALLOWED_EXTENSIONS.join(", ")
                            ))
                        } else if sniffed.starts_with("image/")
                            && !ALLOWED_IMAGES.contains(&sniffed.as_str())
                        {
                            Some(unsupported_image(&name))
                        } else {
                            None
                        };
                        total += size;
                        let key = put.key.clone();
                        if problem.is_none() && first_error.is_none() {
                            put.finish().await?;
                            staged.push(Staged {
                                key,
                                name,
                                content_type: sniffed,
                                size: i64::try_from(size).unwrap_or(i64::MAX),
                            });
                        } else {
                            put.abort().await;
                            if first_error.is_none() {
                                first_error = problem;
                            }
                        }
                        if too_big || total > MAX_UPLOAD {
                            break;
                        }
                    }
                    "participant_name" => name_field = field.text().await.unwrap_or_default(),
                    "participant_remote_id" => {
                        remote_field = field.text().await.unwrap_or_default()
                    }
                    _ => {}
                }
            }
            if let Some(e) = &first_error {
                return Err(error(e));
            }
            if total > MAX_UPLOAD {
                return Err(error("Total file size exceeds maximum of 50MB"));
            }
            if staged.is_empty() {
                return Err(error("No files provided"));
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            // Nothing of a refused batch stays in the store.
            for s in &staged {
                st.domain.files.delete(&s.key).await;
            }
            return Err(e);
        }
        let uploaded_by = if !a.participant_identifier.is_empty() {
            a.participant_identifier.clone()
        } else if !remote_field.is_empty() {
            remote_field.clone()
        } else {
            "unknown".into()
        };
        let stored = uploads::record_uploads(
            &st.domain,
            &a.session,
            &uploaded_by,
            &name_field,
            &remote_field,
            staged,
        )
        .await?;
        let files: Vec<UploadedView> = stored
            .into_iter()
            .map(|f| UploadedView {
                id: f.id,
                name: f.name,
                size: f.size.unwrap_or(0),
                content_type: f.content_type,
            })
            .collect();
        Ok((StatusCode::CREATED, Json(json!({ "files": files }))).into_response())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_what_matters() {
        assert_eq!(
            sniff(
                "photo.jpg",
                b"<?xml version=\"1.0\"?><svg xmlns=\"x\"></svg>"
            ),
            "image/svg+xml"
        );
        assert_eq!(sniff("a.png", b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(sniff("notes.txt", b"hello"), "text/plain");
        assert_eq!(sniff("x.bin", b"\x00\x01"), "application/octet-stream");
        assert_eq!(extension("A.TXT"), ".txt");
        assert_eq!(extension("noext"), "");
    }
}
