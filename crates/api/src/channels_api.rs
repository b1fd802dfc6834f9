//! `POST /channels/api/{id}/incoming_message` (and `/v{version}/…`): a
//! synchronous conversation as the key's user; sessions persist across calls.

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::post;
use engine::TurnError;
use engine::turn::ApiMessage;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::body::JsonObject;
use crate::error::Result;
use crate::input::{FieldErrors, Reader, Text};
use crate::routes::Routes;
use crate::turns::{chatbot_id, detached, parse_version, turn_error};
use crate::{ApiError, AppState};

pub fn router() -> Routes {
    Routes::new()
        .route(
            "/channels/api/{experiment_id}/incoming_message",
            post(incoming),
        )
        .route(
            "/channels/api/{experiment_id}/{version}/incoming_message",
            post(incoming_versioned),
        )
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiResponseAttachment)]
pub struct AttachmentView {
    pub file_name: String,
    pub link: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiResponseMessage)]
pub struct ApiResponseView {
    pub response: String,
    pub attachments: Vec<AttachmentView>,
}

// The body of a channels-API message.
#[derive(Debug, ToSchema)]
#[schema(as = ApiMessage)]
pub struct ApiMessageRequest {
    pub message: String,
    pub session: Option<String>,
}

impl ApiMessageRequest {
    fn read(body: &JsonObject) -> Result<Self, FieldErrors> {
        let mut r = Reader::new(&body.0);
        // Numbers are accepted as text and nothing is trimmed, as the original.
        let message = r.text("message", Text::required().allow_blank().raw().numbers());
        let session = r.text("session", Text::optional().allow_blank().raw().numbers());
        r.finish()?;
        Ok(ApiMessageRequest {
            message: message.unwrap_or_default(),
            session,
        })
    }
}

async fn handle(
    state: AppState,
    auth: domain::auth::AuthContext,
    id: &str,
    version: Option<i32>,
    body: JsonObject,
) -> Result<Json<ApiResponseView>> {
    let chatbot_id = chatbot_id(id)?;
    let ApiMessageRequest { message, session } = ApiMessageRequest::read(&body)?;
    let engine = state.engine.clone();
    let m = ApiMessage {
        team_id: auth.team_id,
        user_id: auth.user_id,
        chatbot_id,
        version,
        session,
        message,
    };
    let text = match detached(async move { engine.api_message(m).await }).await {
        Ok(reply) => reply.text,
        // The allowlist's refusal is the answer, as the original replies it.
        Err(TurnError::NotAllowed(refusal)) => refusal,
        Err(e) => return Err(turn_error(e)),
    };
    Ok(Json(ApiResponseView {
        response: text,
        attachments: Vec::new(),
    }))
}

/// New API Message
#[utoipa::path(
    post,
    path = "/channels/api/{experiment_id}/incoming_message",
    operation_id = "new_api_message",
    tag = "Channels",
    params(("experiment_id" = String, Path, description = "Experiment ID")),
    request_body = ApiMessageRequest,
    responses((status = 200, body = ApiResponseView)),
    security(("OAuth2" = ["chatbots:interact"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn incoming(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<ApiResponseView>> {
    handle(state, auth, &id, None, body).await
}

/// New API Message (a specific version)
#[utoipa::path(
    post,
    path = "/channels/api/{experiment_id}/v{version}/incoming_message",
    operation_id = "new_api_message_versioned",
    tag = "Channels",
    params(
        ("experiment_id" = String, Path, description = "Experiment ID"),
        ("version" = i32, Path, description = "Version number; 0 = the published version"),
    ),
    request_body = ApiMessageRequest,
    responses((status = 200, body = ApiResponseView)),
    security(("OAuth2" = ["chatbots:interact"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn incoming_versioned(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((id, version)): Path<(String, String)>,
    body: JsonObject,
) -> Result<Json<ApiResponseView>> {
    let v = parse_version(&version)
        .ok_or_else(|| ApiError::Domain(domain::Error::not_found("Not found.")))?;
    handle(state, auth, &id, Some(v), body).await
}
