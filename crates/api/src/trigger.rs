//! `POST /api/trigger_bot`: make the bot message a participant on a channel.

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use domain::channels::Platform;
use domain::trigger::{self, Trigger};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Auth;
use crate::body::JsonObject;
use crate::error::Result;
use crate::input::{FieldErrors, NOT_UUID, Reader, Text, not_a_choice};
use crate::routes::Routes;
use crate::sessions::TeamView;
use crate::url::BaseUrl;

pub fn router() -> Routes {
    Routes::new().route("/api/trigger_bot", post(trigger_bot))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TriggerBotMessageResponse)]
pub struct TriggeredView {
    pub session_id: String,
    pub url: String,
    pub team: TeamView,
    pub channel: String,
}

// The body of `POST /api/trigger_bot`.
#[derive(Debug, ToSchema)]
#[schema(as = TriggerBotMessageRequest)]
pub struct TriggerRequest {
    pub identifier: String,
    #[schema(value_type = String)]
    pub platform: Platform,
    pub experiment: uuid::Uuid,
    pub prompt_text: Option<String>,
    pub message_text: Option<String>,
    #[schema(value_type = Option<bool>)]
    pub start_new_session: bool,
    #[schema(value_type = Object)]
    pub session_data: Map<String, Value>,
    #[schema(value_type = Object)]
    pub participant_data: Map<String, Value>,
}

impl TriggerRequest {
    fn read(body: &JsonObject) -> Result<Self, FieldErrors> {
        let mut r = Reader::new(&body.0);
        let identifier = r.text("identifier", Text::required());
        let platform = r.text("platform", Text::required());
        let experiment = r.text("experiment", Text::required());
        let prompt_text = r.text("prompt_text", Text::optional());
        let message_text = r.text("message_text", Text::optional());
        let platform = platform.and_then(|p| match Platform::from_api(&p) {
            Some(p) => Some(p),
            None => {
                r.replace("platform", json!([not_a_choice(&p)]));
                None
            }
        });
        let experiment = experiment.and_then(|e| match uuid::Uuid::parse_str(&e) {
            Ok(u) => Some(u),
            Err(_) => r.fail("experiment", NOT_UUID),
        });
        let start_new_session = r.flag("start_new_session");
        let session_data = r.object("session_data").unwrap_or_default();
        let participant_data = r.object("participant_data").unwrap_or_default();
        r.finish()?;
        let either_or = match (&prompt_text, &message_text) {
            (None, None) => Some("Either 'prompt_text' or 'message_text' must be provided."),
            (Some(_), Some(_)) => Some("Provide either 'prompt_text' or 'message_text', not both."),
            _ => None,
        };
        if let Some(msg) = either_or {
            let mut r = Reader::new(&body.0);
            r.fail::<()>("non_field_errors", msg);
            r.finish()?;
        }
        match (identifier, platform, experiment) {
            (Some(identifier), Some(platform), Some(experiment)) => Ok(TriggerRequest {
                identifier,
                platform,
                experiment,
                prompt_text,
                message_text,
                start_new_session,
                session_data,
                participant_data,
            }),
            // Each missing value recorded its error above.
            _ => Err(FieldErrors::default()),
        }
    }
}

/// Trigger the bot to send a message to the user, or deliver a message directly
#[utoipa::path(
    post,
    path = "/api/trigger_bot",
    operation_id = "trigger_bot_message",
    tag = "Channels",
    request_body = TriggerRequest,
    responses((status = 200, body = TriggeredView)),
    security(("OAuth2" = ["chatbots:interact"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn trigger_bot(
    State(state): State<AppState>,
    Auth(auth): Auth,
    base: BaseUrl,
    body: JsonObject,
) -> Result<Json<TriggeredView>> {
    let t = TriggerRequest::read(&body)?;
    let t = Trigger {
        identifier: t.identifier,
        platform: t.platform,
        experiment: t.experiment,
        prompt_text: t.prompt_text,
        message_text: t.message_text,
        start_new_session: t.start_new_session,
        session_data: t.session_data,
        participant_data: t.participant_data,
    };
    let done = trigger::trigger(&state.domain, auth.team_id, t).await?;
    Ok(Json(TriggeredView {
        url: base.absolute(&format!("/api/sessions/{}/", done.session_external_id)),
        session_id: done.session_external_id,
        team: TeamView {
            name: done.team_name,
            slug: done.team_slug,
        },
        channel: done.channel.to_string(),
    }))
}
