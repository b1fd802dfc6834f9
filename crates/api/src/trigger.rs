//! `POST /api/trigger_bot`: make the bot message a participant on a channel.

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use domain::Error;
use domain::channels::Platform;
use domain::trigger::{self, Trigger};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Auth;
use crate::body::JsonObject;
use crate::error::Result;
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

#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(as = TriggerBotMessageRequest)]
#[allow(dead_code)]
pub struct TriggerDoc {
    identifier: String,
    platform: String,
    experiment: uuid::Uuid,
    prompt_text: Option<String>,
    message_text: Option<String>,
    start_new_session: Option<bool>,
    #[schema(value_type = Object)]
    session_data: Option<Value>,
    #[schema(value_type = Object)]
    participant_data: Option<Value>,
}

fn parse(body: &JsonObject) -> Result<Trigger, Error> {
    let mut errors = Map::new();
    let mut text = |field: &str, required: bool| -> Option<String> {
        match body.0.get(field) {
            None if required => {
                errors.insert(field.into(), json!(["This field is required."]));
                None
            }
            None => None,
            Some(Value::Null) if required => {
                errors.insert(field.into(), json!(["This field may not be null."]));
                None
            }
            Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.insert(field.into(), json!(["This field may not be blank."]));
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => {
                errors.insert(field.into(), json!(["Not a valid string."]));
                None
            }
        }
    };
    let identifier = text("identifier", true);
    let platform = text("platform", true);
    let experiment = text("experiment", true);
    let prompt_text = text("prompt_text", false);
    let message_text = text("message_text", false);
    if let Some(p) = &platform
        && Platform::parse(p).is_none()
    {
        errors.insert(
            "platform".into(),
            json!([format!("\"{p}\" is not a valid choice.")]),
        );
    }
    let experiment = experiment.and_then(|e| match uuid::Uuid::parse_str(&e) {
        Ok(u) => Some(u),
        Err(_) => {
            errors.insert("experiment".into(), json!(["Must be a valid UUID."]));
            None
        }
    });
    let start_new_session = match body.0.get("start_new_session") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.insert(
                "start_new_session".into(),
                json!(["Must be a valid boolean."]),
            );
            false
        }
    };
    let mut object = |field: &str| -> Map<String, Value> {
        match body.0.get(field) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                errors.insert(field.into(), json!(["Expected a dictionary of items."]));
                Map::new()
            }
        }
    };
    let session_data = object("session_data");
    let participant_data = object("participant_data");
    if !errors.is_empty() {
        return Err(Error::Validation(Value::Object(errors)));
    }
    match (&prompt_text, &message_text) {
        (None, None) => {
            return Err(Error::Validation(
                json!({"non_field_errors": ["Either 'prompt_text' or 'message_text' must be provided."]}),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(Error::Validation(
                json!({"non_field_errors": ["Provide either 'prompt_text' or 'message_text', not both."]}),
            ));
        }
        _ => {}
    }
    Ok(Trigger {
        identifier: identifier.unwrap_or_default(),
        platform: platform
            .as_deref()
            .and_then(Platform::parse)
            .ok_or_else(|| Error::field("platform", "This field is required."))?,
        experiment: experiment
            .ok_or_else(|| Error::field("experiment", "This field is required."))?,
        prompt_text,
        message_text,
        start_new_session,
        session_data,
        participant_data,
    })
}

/// Trigger the bot to send a message to the user, or deliver a message directly
#[utoipa::path(
    post,
    path = "/api/trigger_bot",
    operation_id = "trigger_bot_message",
    tag = "Channels",
    request_body = TriggerDoc,
    responses((status = 200, body = TriggeredView)),
    security(("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn trigger_bot(
    State(state): State<AppState>,
    Auth(auth): Auth,
    base: BaseUrl,
    body: JsonObject,
) -> Result<Json<TriggeredView>> {
    let t = parse(&body)?;
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
