//! Participant pages: the team's participants (filtered, paged by cursor);
//! one participant with their data per chatbot (editable as JSON by chatbot
//! admins) and the schedules still to fire for them.

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::channels::Platform;
use domain::participants::listing::{self, Filter};
use domain::teams::Permission;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use api::AppState;

use crate::error::{PageError, encode};
use crate::member::Member;
use crate::render;
use crate::sessions::when;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    chatbot: String,
    #[serde(default)]
    cursor: Option<String>,
}

/// The list's filters from its query.
pub fn filter_of(q: &ListQuery) -> Result<Filter, PageError> {
    let bad = |what: &str, v: &str| {
        PageError::BadRequest(format!("{what}: {v:?} is not one of the choices"))
    };
    Ok(Filter {
        identifier: Some(q.identifier.trim().to_string()).filter(|s| !s.is_empty()),
        platform: match q.channel.trim() {
            "" => None,
            c => Some(Platform::parse(c).ok_or_else(|| bad("channel", c))?),
        },
        chatbot: match q.chatbot.trim() {
            "" => None,
            c => Some(Uuid::parse_str(c).map_err(|_| bad("chatbot", c))?),
        },
    })
}

pub async fn list(
    State(state): State<AppState>,
    m: Member,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let filter = filter_of(&q)?;
    let page = listing::list(
        &state.domain,
        m.team.id,
        &filter,
        &render::page_of(&q.cursor),
    )
    .await?;
    let bots = domain::chatbots::list_all(&state.domain, m.team.id).await?;
    let keep = format!(
        "identifier={}&channel={}&chatbot={}",
        encode(q.identifier.trim()),
        encode(q.channel.trim()),
        encode(q.chatbot.trim())
    );
    render::page(
        "participants.html",
        context! {
            ..m.frame("participants"),
            ..context! {
                participants => page.items.iter().map(|p| context! {
                    id => p.id.to_string(),
                    identifier => p.identifier,
                    name => p.name,
                    platform => p.platform.as_str(),
                    chatbots => p.data.iter().map(|d| d.chatbot.clone()).collect::<Vec<_>>(),
                }).collect::<Vec<_>>(),
                chatbots => bots.iter().map(|b| context! { id => b.id.to_string(), name => b.name }).collect::<Vec<_>>(),
                channels => Platform::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                filter => context! { identifier => q.identifier.trim(), channel => q.channel.trim(), chatbot => q.chatbot.trim() },
                pages => render::pager(&keep, &page),
            }
        },
    )
}

fn participant_id(id: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(id).map_err(|_| PageError::NotFound)
}

async fn detail_page(
    state: &AppState,
    m: &Member,
    id: Uuid,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let (row, p) = listing::one(&state.domain, m.team.id, id).await?;
    let schedules = domain::schedules::pending_of(&state.domain, row).await?;
    render::page_with(
        status,
        "participant.html",
        context! {
            ..m.frame("participants"),
            ..context! {
                p => context! {
                    id => p.id.to_string(),
                    identifier_query => encode(&p.identifier),
                    identifier => p.identifier,
                    name => p.name,
                    platform => p.platform.as_str(),
                    remote_id => p.remote_id,
                },
                data => p.data.iter().map(|d| context! {
                    chatbot => d.chatbot,
                    chatbot_id => d.chatbot_id.to_string(),
                    json => serde_json::to_string_pretty(&d.data).unwrap_or_default(),
                }).collect::<Vec<_>>(),
                schedules => schedules.iter().map(|s| context! {
                    chatbot => s.chatbot,
                    name => s.name,
                    prompt => s.prompt,
                    next_at => when(s.next_at),
                    repetitions => s.repetitions,
                    total_triggers => s.total_triggers,
                }).collect::<Vec<_>>(),
                error => error,
            }
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    m: Member,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    detail_page(&state, &m, participant_id(&id)?, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct DataForm {
    #[serde(default)]
    data: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// Replaces the participant's data for one chatbot with a JSON object.
pub async fn set_data(
    State(state): State<AppState>,
    m: Member,
    Path((_, id, chatbot)): Path<(String, String, String)>,
    Form(f): Form<DataForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    let id = participant_id(&id)?;
    let chatbot = Uuid::parse_str(&chatbot).map_err(|_| PageError::NotFound)?;
    let (row, _) = listing::one(&state.domain, m.team.id, id).await?;
    let data: serde_json::Value = match serde_json::from_str(&f.data) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            let msg = "The data must be a JSON object ({\"key\": \"value\", …}).".to_string();
            return detail_page(&state, &m, id, StatusCode::BAD_REQUEST, Some(msg)).await;
        }
        Err(e) => {
            let msg = format!("The data is not valid JSON: {e}");
            return detail_page(&state, &m, id, StatusCode::BAD_REQUEST, Some(msg)).await;
        }
    };
    let family = domain::chatbots::family_of(&state.domain, m.team.id, chatbot).await?;
    domain::participants::data::set(&state.domain, m.team.id, row, family, &data).await?;
    Ok(m.go(&format!("participants/{id}/")))
}
