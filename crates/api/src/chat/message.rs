//! `POST /api/chat/{session}/message/`: the message is persisted and its turn
//! enqueued; the answer is the task to poll.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::messages::{self, Incoming};
use domain::sessions::access::Use;
use serde_json::Value;
use utoipa::ToSchema;

use super::{PeerAddr, on_session};
use crate::AppState;
use crate::body::JsonObject;
use crate::input::{FieldErrors, Reader, Text};

// The body of `POST /api/chat/{session}/message/`.
#[derive(Debug, ToSchema)]
#[schema(as = ChatSendMessageRequestWithAttachments)]
pub struct MessageRequest {
    pub message: String,
    #[schema(value_type = Object)]
    pub context: Option<Value>,
    #[schema(value_type = Option<Vec<i64>>)]
    pub attachment_ids: Vec<i64>,
    pub version_number: Option<i32>,
}

impl MessageRequest {
    fn read(body: &JsonObject) -> Result<Self, FieldErrors> {
        let mut r = Reader::new(&body.0);
        let message = r.text("message", Text::required());
        let context = r.object("context").map(Value::Object);
        let attachment_ids = r.ints("attachment_ids");
        let version_number = r.count("version_number");
        r.finish()?;
        Ok(MessageRequest {
            message: message.unwrap_or_default(),
            context,
            attachment_ids,
            version_number,
        })
    }
}

#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = ChatSendMessageResponse)]
pub struct MessageAccepted {
    pub task_id: String,
    pub status: String,
}

/// Send a message
#[utoipa::path(
    post,
    path = "/api/chat/{session_id}/message/",
    operation_id = "chat_send_message",
    tag = "Chat",
    params(("session_id" = String, Path)),
    request_body = MessageRequest,
    responses((status = 202, body = MessageAccepted)),
    security(("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn message(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    body: JsonObject,
) -> Response {
    on_session(
        &state,
        &headers,
        (&session_id, Use::Write, peer),
        move |st, a| async move {
            let m = MessageRequest::read(&body)?;
            let m = Incoming {
                text: m.message,
                context: m.context,
                attachment_ids: m.attachment_ids,
                version_number: m.version_number,
            };
            let task = messages::accept(&st.domain, &a.session, a.status, a.member, m).await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(MessageAccepted {
                    task_id: task.to_string(),
                    status: "processing".into(),
                }),
            )
                .into_response())
        },
    )
    .await
}
