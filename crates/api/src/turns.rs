//! Running a turn from a handler: on its own task, so the turn's writes finish
//! even when the client disconnects mid-request.

use std::future::Future;

use engine::TurnError;

use crate::ApiError;

pub fn turn_error(e: TurnError) -> ApiError {
    match e {
        TurnError::Domain(d) => ApiError::Domain(d),
        other => ApiError::Domain(domain::Error::Upstream(other.public_message())),
    }
}

/// Spawns `fut` and awaits it; dropping the caller (client gone) leaves it running.
pub async fn detached<T: Send + 'static>(
    fut: impl Future<Output = Result<T, TurnError>> + Send + 'static,
) -> Result<T, TurnError> {
    tokio::spawn(fut)
        .await
        .map_err(|e| TurnError::Domain(domain::Error::internal_from("turn task", e)))?
}

/// `v3` → 3; anything else is not a version segment.
pub fn parse_version(segment: &str) -> Option<i32> {
    segment
        .strip_prefix('v')
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
}

/// A chatbot id in a path: not a UUID means no such chatbot.
pub fn chatbot_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw.trim())
        .map_err(|_| ApiError::Domain(domain::Error::not_found(domain::chatbots::NOT_FOUND)))
}
