//! `GET /api/chat/{session}/poll/`: the messages since a time.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use domain::messages::transcript;
use domain::sessions::SessionStatus;
use domain::sessions::access::Use;
use serde_json::json;

use super::{PeerAddr, error, message_view, on_session};
use crate::AppState;
use crate::sessions::MessageView;
use crate::url::BaseUrl;
use crate::views::{query_pairs, query_param};

const MAX_POLL_LIMIT: u64 = 1000;

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
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    base: BaseUrl,
    Path(session_id): Path<String>,
) -> Response {
    on_session(
        &state,
        &headers,
        (&session_id, Use::Read, peer),
        move |st, a| async move {
            let pairs = query_pairs(base.query.as_deref());
            let since = match query_param(&pairs, "since").filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(
                    crate::participants::parse_datetime(&s.replace(' ', "+")).ok_or_else(|| {
                        error("Invalid 'since' parameter format. Use ISO format.")
                    })?,
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
                transcript::since(&st.domain, a.session.team_id, a.session.id, since, limit)
                    .await?;
            let messages: Vec<MessageView> =
                msgs.into_iter().map(|m| message_view(&base, m)).collect();
            Ok(Json(json!({
            "messages": messages,
            "has_more": has_more,
            "session_status": if a.status == SessionStatus::Complete { "ended" } else { "active" },
        }))
        .into_response())
        },
    )
    .await
}
