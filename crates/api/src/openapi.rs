//! Our OpenAPI document, generated from the handlers, at `/api/schema/`
//! (JSON; YAML with `?format=yaml` or at `/api/schema.yaml`) and a docs UI at
//! `/api/docs/` (swagger-ui assets vendored into the binary).

use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, AuthorizationCode, ClientCredentials, Flow, HttpAuthScheme, HttpBuilder,
    OAuth2, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::AppState;
use crate::routes::Routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "chatstudio", version = "v1", description = "Build, deploy and monitor chatbots."),
    paths(
        crate::experiments::list,
        crate::experiments::retrieve,
        crate::channels_api::incoming,
        crate::channels_api::incoming_versioned,
        crate::openai::completions,
        crate::openai::completions_versioned,
        crate::sessions::list,
        crate::sessions::create,
        crate::sessions::retrieve,
        crate::sessions::end,
        crate::sessions::add_tags,
        crate::sessions::remove_tags,
        crate::sessions::update_state,
        crate::traces::list,
        crate::participants::list,
        crate::participants::upsert,
        crate::files::content,
        crate::chat::start,
        crate::chat::message,
        crate::chat::poll_task,
        crate::chat::poll_messages,
        crate::chat::upload,
        crate::trigger::trigger_bot,
    ),
    modifiers(&Security),
    tags(
        (name = "Experiments", description = "Chatbots and their versions."),
        (name = "Channels", description = "Converse with a chatbot over the API channel."),
        (name = "OpenAI", description = "OpenAI-compatible chat completions."),
        (name = "Experiment Sessions", description = "Conversations, their transcripts and usage."),
        (name = "Participants", description = "Participants, their data and schedules."),
        (name = "Files", description = "File downloads."),
        (name = "Chat", description = "The chat widget API."),
    )
)]
pub struct ApiDoc;

/// Operations we serve beyond the original's API v1 (documented here, not in
/// the upstream contract).
pub const EXTENSIONS: &[&str] = &["session_traces"];

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-api-key"))),
        );
        components.add_security_scheme(
            "embedKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Embed-Key"))),
        );
        let scopes = || {
            Scopes::from_iter(
                domain::oauth::Scope::ALL
                    .iter()
                    .map(|s| (s.as_str(), s.description())),
            )
        };
        components.add_security_scheme(
            "OAuth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::AuthorizationCode(
                AuthorizationCode::new("/o/authorize/", "/o/token/", scopes()),
            )])),
        );
        components.add_security_scheme(
            "chatOAuth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::ClientCredentials(
                ClientCredentials::new(
                    "/o/token/",
                    Scopes::from_iter([(
                        domain::oauth::Scope::ChatStart.as_str(),
                        domain::oauth::Scope::ChatStart.description(),
                    )]),
                ),
            )])),
        );
        components.add_security_scheme(
            "cookieAuth",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("sessionid"))),
        );
        components.add_security_scheme(
            "tokenAuth",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(serde::Deserialize)]
struct Format {
    format: Option<String>,
}

pub fn router() -> Routes {
    let ui: Router<AppState> = SwaggerUi::new("/api/docs")
        .config(Config::from("/api/schema/"))
        .into();
    Routes::new()
        .route("/api/schema/", get(schema))
        .route("/api/schema.yaml", get(schema_yaml))
        .route("/api/schema.json", get(schema_json))
        .merge_foreign(ui)
}

async fn schema(Query(f): Query<Format>) -> Response {
    match f.format.as_deref() {
        Some("yaml") | Some("openapi") => schema_yaml().await,
        _ => schema_json().await,
    }
}

async fn schema_json() -> Response {
    Json(document()).into_response()
}

async fn schema_yaml() -> Response {
    match document().to_yaml() {
        Ok(y) => ([(header::CONTENT_TYPE, "application/yaml")], y).into_response(),
        Err(e) => {
            crate::ApiError::Domain(domain::Error::internal_from("openapi yaml", e)).into_response()
        }
    }
}
