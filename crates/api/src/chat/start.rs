//! `POST /api/chat/start/`: a session for the widget, a keyless visitor of a
//! public chatbot, or a team member.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::channels::widget;
use domain::sessions::{self, Caller, Start};
use domain::{Error, TeamId, chatbots};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::{PeerAddr, api_key, embed_channel, header_str, limited, start_bucket};
use crate::body::JsonObject;
use crate::input::{FieldErrors, Null, Reader, Text};
use crate::url::BaseUrl;
use crate::{ApiError, AppState};

#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = ChatStartSessionResponse)]
pub struct StartView {
    pub session_id: String,
    pub session_token: Option<String>,
    #[schema(value_type = Object)]
    pub chatbot: Value,
    pub participant: crate::sessions::ParticipantView,
}

// The body of `POST /api/chat/start/`.
#[derive(Debug, ToSchema)]
#[schema(as = ChatStartSessionRequest)]
pub struct StartRequest {
    pub chatbot_id: uuid::Uuid,
    pub version_number: Option<i32>,
    #[schema(value_type = Object)]
    pub session_data: Option<Map<String, Value>>,
    pub participant_remote_id: Option<String>,
    pub participant_name: Option<String>,
}

impl StartRequest {
    fn read(body: &JsonObject) -> Result<Self, FieldErrors> {
        let mut r = Reader::new(&body.0);
        let chatbot_id = r.uuid("chatbot_id", true, Null::Refused);
        let version_number = r.count("version_number");
        let session_data = r.object("session_data");
        let name = Text::optional().null(Null::Refused).max(255);
        let participant_remote_id = r.text("participant_remote_id", name);
        let participant_name = r.text("participant_name", name);
        r.finish()?;
        Ok(StartRequest {
            chatbot_id: chatbot_id.unwrap_or_default(),
            version_number,
            session_data,
            participant_remote_id,
            participant_name,
        })
    }

    fn into_start(self, referer: Option<&str>) -> Start {
        let embed_source = referer
            .filter(|r| {
                (r.starts_with("http://") || r.starts_with("https://"))
                    && widget::origin_host(None, Some(r)).is_some()
            })
            .map(str::to_string);
        Start {
            chatbot_id: self.chatbot_id,
            version_number: self.version_number,
            session_data: self.session_data,
            participant_remote_id: self.participant_remote_id,
            participant_name: self.participant_name,
            embed_source,
        }
    }
}

async fn chatbot_view(
    state: &AppState,
    base: &BaseUrl,
    team_id: TeamId,
    id: uuid::Uuid,
) -> Result<Value, ApiError> {
    let db = &state.domain;
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

/// An `Authorization: Bearer` value shaped as an OAuth2 access token (API
/// keys, which carry a `.`, keep their own path).
fn oauth_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, "authorization")?;
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains('.'))
        .then_some(token)
}

/// Start a chat session
#[utoipa::path(
    post,
    path = "/api/chat/start/",
    operation_id = "chat_start_session",
    tag = "Chat",
    request_body = StartRequest,
    responses((status = 201, body = StartView)),
    security((), ("chatOAuth2" = ["chat:start"]), ("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    base: BaseUrl,
    body: JsonObject,
) -> Response {
    let identity = start_bucket(header_str(&headers, "x-embed-key"), peer);
    let st = state.clone();
    limited(&state, peer, identity, async move {
        let oauth = match oauth_token(&headers).zip(body.0.get("chatbot_id")) {
            Some((token, id)) => {
                let id = id
                    .as_str()
                    .and_then(|s| uuid::Uuid::parse_str(s).ok())
                    .ok_or_else(|| {
                        ApiError::Domain(Error::BadRequest(
                            "chatbot_id must be a valid UUID".into(),
                        ))
                    })?;
                let origin = super::origin(&headers);
                match domain::oauth::chat_start::admit(&st.domain, id, token, origin.as_deref())
                    .await?
                {
                    Some(ch) => Some(Caller::Widget(ch)),
                    // No such chatbot: nothing to admit to (the start answers 404).
                    None => Some(Caller::Anonymous),
                }
            }
            None => None,
        };
        let caller = if let Some(caller) = oauth {
            caller
        } else if let Some(key) = api_key(&headers) {
            let ctx = domain::auth::authenticate_api_key(&st.domain, key).await?;
            if ctx.read_only {
                return Err(ApiError::Domain(Error::PermissionDenied));
            }
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
            let ch = embed_channel(&st, &headers, key).await?;
            // An embed key alone never admits to an OAuth channel.
            if ch.credential_mode == widget::CredentialMode::OAuth {
                return Err(ApiError::Domain(Error::ChatAccessDenied));
            }
            Caller::Widget(ch)
        } else if let Some(ctx) = crate::auth::console_caller(&st, &headers, true).await? {
            // A signed-in member trying a chatbot in the console.
            if ctx.read_only {
                return Err(ApiError::Domain(Error::PermissionDenied));
            }
            Caller::Member {
                team_id: ctx.team_id,
                user_id: ctx.user_id,
            }
        } else {
            Caller::Anonymous
        };
        let s = StartRequest::read(&body)?.into_start(header_str(&headers, "referer"));
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
