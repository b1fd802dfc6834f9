//! Chatbot pages: the team's chatbots (and a new one from a chatbot file),
//! one chatbot's settings and versions (and a new version, published or not).

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::chatbots::{self, BotFile, Chatbot};
use domain::teams::Permission;
use minijinja::{Value, context};
use serde::Deserialize;

use api::AppState;

use crate::error::{PageError, redirect};
use crate::member::{BotId, Member};
use crate::render;

/// `/a/{team}/`: the team's first page.
pub async fn team_home(m: Member) -> Response {
    m.go("chatbots/")
}

fn row(c: &Chatbot) -> Value {
    let published = c.versions.iter().find(|v| v.is_default_version);
    context! {
        id => c.id.to_string(),
        name => c.name,
        description => c.description,
        versions => c.versions.len(),
        published => published.map(|v| v.version_number),
        updated_at => crate::sessions::when(c.updated_at),
    }
}

async fn list_page(
    state: &AppState,
    m: &Member,
    status: StatusCode,
    yaml: &str,
    error: Option<String>,
) -> Result<Response, PageError> {
    let bots = chatbots::list_all(&state.domain, m.team.id).await?;
    render::page_with(
        status,
        "chatbots.html",
        context! {
            ..m.frame("chatbots"),
            ..context! {
                chatbots => bots.iter().map(row).collect::<Vec<_>>(),
                yaml => yaml,
                error => error,
            }
        },
    )
}

pub async fn list(State(state): State<AppState>, m: Member) -> Result<Response, PageError> {
    list_page(&state, &m, StatusCode::OK, "", None).await
}

#[derive(Deserialize)]
pub struct NewChatbot {
    #[serde(default)]
    yaml: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// A chatbot from a chatbot file (the format `chatbot apply` reads); a file
/// naming an existing chatbot updates its working version.
pub async fn create(
    State(state): State<AppState>,
    m: Member,
    Form(f): Form<NewChatbot>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    let applied = match BotFile::parse_yaml(&f.yaml) {
        Ok(file) if !file.actions.is_empty() => Err(domain::Error::BadRequest(
            "custom actions are added with `chatstudio chatbot apply` (they need their OpenAPI schema files)".into(),
        )),
        Ok(file) => {
            chatbots::apply(
                &state.domain.db.write,
                &state.domain.secrets,
                m.team.id,
                Some(m.sign_in.user_id.0),
                file,
                Vec::new(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match applied {
        Ok((bot, _)) => Ok(redirect(&format!(
            "/a/{}/chatbots/{}/",
            m.team.slug, bot.id
        ))),
        Err(e) => {
            let msg = crate::error::refusal(e)?;
            list_page(&state, &m, StatusCode::BAD_REQUEST, &f.yaml, Some(msg)).await
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
) -> Result<Response, PageError> {
    let bot = chatbots::get(&state.domain, m.team.id, id).await?;
    let config = bot
        .config
        .as_object()
        .map(|_| yaml_text(&bot.config))
        .unwrap_or_default();
    render::page(
        "chatbot.html",
        context! {
            ..m.frame("chatbots"),
            ..context! {
                bot => row(&bot),
                working_version => bot.version_number,
                config => config,
                // Built by our own writer, every text in it escaped.
                graph => Value::from_safe_string(crate::graph::pipeline_svg(&bot.config["pipeline"])),
                compare_from => bot.versions.iter().rev().find(|v| v.is_default_version).map(|v| v.version_number.to_string()),
                versions => bot.versions.iter().rev().map(|v| context! {
                    number => v.version_number,
                    published => v.is_default_version,
                    description => v.version_description,
                    created_at => crate::sessions::when(v.created_at),
                }).collect::<Vec<_>>(),
            }
        },
    )
}

/// The configuration as the chatbot file writes it.
pub fn yaml_text(v: &serde_json::Value) -> String {
    yaml_serde::to_string(v).unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default())
}

#[derive(Deserialize)]
pub struct NewVersion {
    #[serde(default)]
    description: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    publish: Option<String>,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// Snapshots the working version (and publishes it when asked).
pub async fn new_version(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
    Form(f): Form<NewVersion>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    chatbots::create_version(
        &state.domain.db.write,
        m.team.id,
        id,
        f.description.trim(),
        f.publish.is_some(),
    )
    .await?;
    Ok(m.go(&format!("chatbots/{id}/")))
}

/// The try-it panel: a chat with the published version or any other, through
/// the chat API with the console's cookie (`static/try.js`).
pub async fn try_it(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
) -> Result<Response, PageError> {
    m.require(Permission::ManageChatbots)?;
    let bot = chatbots::get(&state.domain, m.team.id, id).await?;
    render::page(
        "try.html",
        context! {
            ..m.frame("chatbots"),
            ..context! {
                bot => row(&bot),
                versions => bot.versions.iter().rev().map(|v| context! {
                    number => v.version_number,
                    description => v.version_description,
                }).collect::<Vec<_>>(),
            }
        },
    )
}
