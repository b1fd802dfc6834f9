//! `POST /channels/telegram/{channel_id}`: Telegram's webhook. Checks the
//! secret token, accepts each update once (by `update_id`), persists the
//! message and enqueues its turn in one transaction, and answers 200 at once;
//! the reply goes out from a job.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use channels::InboundKind;
use domain::channels::push;
use domain::channels::telegram as tg;

use crate::AppState;
use crate::inbound::incoming;
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new().route("/channels/telegram/{channel_id}", post(webhook))
}

pub async fn webhook(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&channel_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ch = match tg::by_public_id(&state.domain, id).await {
        Ok(Some(ch)) => ch,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return crate::ApiError::Domain(e).into_response(),
    };
    let secret = headers
        .get(
            channels::telegram::SECRET_HEADER
                .to_ascii_lowercase()
                .as_str(),
        )
        .and_then(|v| v.to_str().ok());
    if !ch.secret_matches(secret) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let events = match channels::telegram::parse_updates(&body) {
        Ok(e) => e,
        // Telegram retries non-2xx forever: an unreadable update is logged and dropped.
        Err(e) => {
            tracing::warn!(error = %e, "unreadable Telegram update");
            return StatusCode::OK.into_response();
        }
    };
    let updates = events
        .into_iter()
        // Edits of earlier messages are not answered.
        .filter(|ev| !matches!(&ev.kind, InboundKind::Unsupported(k) if k == "edited"))
        .map(incoming)
        .collect();
    match push::accept(&state.domain, &ch, updates).await {
        Ok(n) => {
            state.domain.wake_workers(n);
            StatusCode::OK.into_response()
        }
        Err(e) => crate::ApiError::Domain(e).into_response(),
    }
}
