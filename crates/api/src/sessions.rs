//! `/api/sessions/…`: list, create, retrieve, end, tags and state.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use domain::messages::{MessageRole, TranscriptMessage};
use domain::pagination::Order;
use domain::sessions::{self, Detail, Filter, Summary};
use domain::{Error, pricing};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::body::JsonObject;
use crate::error::Result;
use crate::input::{FieldErrors, NOT_NULL, Null, REQUIRED, Reader, Text, not_a_choice, not_a_uuid};
use crate::pagination::{Paginated, envelope, page_request};
use crate::routes::Routes;
use crate::url::BaseUrl;
use crate::views::{datetime, query_pairs, query_param};
use crate::{ApiError, AppState};

pub fn router() -> Routes {
    Routes::new()
        .route("/api/sessions/", get(list).post(create))
        .route("/api/sessions/{id}/", get(retrieve))
        .route("/api/sessions/{id}/end_experiment_session/", post(end))
        .route(
            "/api/sessions/{id}/tags/",
            post(add_tags).delete(remove_tags),
        )
        .route("/api/sessions/{id}/update_state/", patch(update_state))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Team)]
pub struct TeamView {
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExperimentStub)]
pub struct ExperimentStubView {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub version_number: i32,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Participant)]
pub struct ParticipantView {
    pub identifier: String,
    pub remote_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExperimentSession)]
pub struct SessionView {
    pub url: String,
    pub id: String,
    pub team: TeamView,
    pub experiment: ExperimentStubView,
    pub participant: ParticipantView,
    pub created_at: String,
    pub updated_at: String,
    pub status: String,
    pub platform: Option<String>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub state: Value,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = File)]
pub struct FileView {
    pub name: String,
    pub content_type: String,
    pub size: Option<i64>,
    pub content_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Message)]
pub struct MessageView {
    pub created_at: String,
    pub role: String,
    pub content: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub tags: Vec<String>,
    pub attachments: Vec<FileView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SessionModelUsage)]
pub struct ModelUsageView {
    pub model_name: String,
    pub cost: String,
    pub tokens: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SessionUsage)]
pub struct UsageView {
    pub total_cost: String,
    pub by_model: Vec<ModelUsageView>,
}

/// The detail: the session object with `messages` and `usage` between
/// `platform` and `tags`, in the original's key order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExperimentSessionWithMessages)]
pub struct SessionDetailView {
    pub url: String,
    pub id: String,
    pub team: TeamView,
    pub experiment: ExperimentStubView,
    pub participant: ParticipantView,
    pub created_at: String,
    pub updated_at: String,
    pub status: String,
    pub platform: Option<String>,
    pub messages: Vec<MessageView>,
    pub usage: UsageView,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub state: Value,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PaginatedExperimentSessionList)]
pub struct PaginatedSessionsDoc {
    next: Option<String>,
    previous: Option<String>,
    results: Vec<SessionView>,
    count: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = tags_response_serializer)]
pub struct TagsView {
    pub tags: Vec<String>,
}

// The body of `POST /api/sessions/` (doc comments here would change the
// OpenAPI document).
#[derive(Debug, ToSchema)]
#[schema(as = ExperimentSessionCreate)]
pub struct CreateRequest {
    pub experiment: uuid::Uuid,
    pub participant: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<(MessageRole, String)>,
    #[schema(value_type = Object)]
    pub state: Value,
}

impl CreateRequest {
    fn read(body: &JsonObject) -> Result<Self, FieldErrors> {
        let mut r = Reader::new(&body.0);
        let experiment = match r.get("experiment") {
            None => r.fail("experiment", REQUIRED),
            Some(Value::Null) => r.fail("experiment", NOT_NULL),
            Some(v) => {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                match uuid::Uuid::parse_str(text.trim()) {
                    Ok(u) => Some(u),
                    Err(_) => r.fail("experiment", not_a_uuid(&text)),
                }
            }
        };
        let participant = r.text("participant", Text::optional().max(320));
        let messages = r
            .objects("messages", false, true, |m| {
                let role = match m.get("role").and_then(Value::as_str) {
                    None => m.fail("role", REQUIRED),
                    Some(name) => match MessageRole::from_api_name(name) {
                        Some(role) => Some(role),
                        None => m.fail("role", not_a_choice(name)),
                    },
                };
                let content = m.text("content", Text::required().null(Null::Absent).raw());
                role.zip(content)
            })
            .unwrap_or_default();
        let state = match r.get("state") {
            None => json!({}),
            Some(Value::Null) => r.fail("state", NOT_NULL).unwrap_or(Value::Null),
            Some(v) => domain::values::strip_controls(v),
        };
        r.finish()?;
        Ok(CreateRequest {
            experiment: experiment.unwrap_or_default(),
            participant,
            messages,
            state,
        })
    }
}

fn summary_view(base: &BaseUrl, s: Summary) -> SessionView {
    SessionView {
        url: base.absolute(&format!("/api/sessions/{}/", s.external_id)),
        id: s.external_id,
        team: TeamView {
            name: s.team_name,
            slug: s.team_slug,
        },
        experiment: ExperimentStubView {
            url: base.absolute(&format!("/api/experiments/{}/", s.experiment.id)),
            id: s.experiment.id,
            name: s.experiment.name,
            description: Some(s.experiment.description),
            version_number: s.experiment.version_number,
        },
        participant: ParticipantView {
            identifier: s.participant_identifier,
            remote_id: s.participant_remote_id,
        },
        created_at: datetime(s.created_at),
        updated_at: datetime(s.updated_at),
        status: s.status.to_string(),
        platform: s.platform.map(|p| p.to_string()),
        tags: s.tags,
        state: s.state,
    }
}

/// A transcript message as the API shows it (session detail, chat polls).
pub fn message_view(base: &BaseUrl, m: TranscriptMessage) -> MessageView {
    MessageView {
        created_at: datetime(m.created_at),
        role: m.role.api_name().to_string(),
        content: m.content,
        metadata: m.metadata,
        tags: m.tags,
        attachments: m
            .attachments
            .into_iter()
            .map(|a| FileView {
                content_url: base.absolute(&format!("/api/files/{}/content", a.id)),
                name: a.name,
                content_type: a.content_type,
                size: a.size,
            })
            .collect(),
    }
}

fn detail_view(base: &BaseUrl, d: Detail) -> SessionDetailView {
    let s = summary_view(base, d.summary);
    SessionDetailView {
        url: s.url,
        id: s.id,
        team: s.team,
        experiment: s.experiment,
        participant: s.participant,
        created_at: s.created_at,
        updated_at: s.updated_at,
        status: s.status,
        platform: s.platform,
        messages: d
            .messages
            .into_iter()
            .map(|m| message_view(base, m))
            .collect(),
        usage: UsageView {
            total_cost: pricing::format_e8(d.total_cost_e8),
            by_model: d
                .by_model
                .into_iter()
                .map(|(model_name, cost, tokens)| ModelUsageView {
                    model_name,
                    cost: pricing::format_e8(cost),
                    tokens,
                })
                .collect(),
        },
        tags: s.tags,
        state: s.state,
    }
}

fn split_list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// List Sessions
#[utoipa::path(
    get,
    path = "/api/sessions/",
    operation_id = "session_list",
    tag = "Experiment Sessions",
    params(
        ("cursor" = Option<String>, Query, description = "The pagination cursor value."),
        ("page_size" = Option<i64>, Query, description = "Number of results to return per page."),
        ("experiment" = Option<String>, Query, description = "Only sessions of this chatbot (UUID)."),
        ("tags" = Option<String>, Query, description = "Comma-separated tag names: sessions with any of them."),
        ("versions" = Option<String>, Query, description = "Comma-separated version tags (`v1`, `v2-unreleased`)."),
        ("ordering" = Option<String>, Query, description = "`created_at` or `-created_at` (default)."),
    ),
    responses((status = 200, body = PaginatedSessionsDoc)),
    security(("OAuth2" = ["sessions:read"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(auth): Auth,
    base: BaseUrl,
) -> Result<Json<Paginated<SessionView>>> {
    let pairs = query_pairs(base.query.as_deref());
    let experiment = match query_param(&pairs, "experiment").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(uuid::Uuid::parse_str(v.trim()).map_err(|_| {
            ApiError::Domain(Error::field(
                "experiment",
                format!("\"{v}\" is not a valid UUID."),
            ))
        })?),
    };
    let order = match query_param(&pairs, "ordering") {
        Some("created_at") => Some(Order::Asc),
        Some("-created_at") => Some(Order::Desc),
        _ => None,
    };
    let filter = Filter {
        experiment,
        tags: split_list(query_param(&pairs, "tags")),
        versions: split_list(query_param(&pairs, "versions")),
        order,
        ..Default::default()
    };
    // The contract's `count` is the total: exact for every filter.
    let page = sessions::list(
        &state.domain,
        auth.team_id,
        &filter,
        &page_request(base.query.as_deref()),
        sessions::listing::Counting::Exact,
    )
    .await?;
    Ok(Json(envelope(&base, page, |s| summary_view(&base, s))))
}

/// Create Session
#[utoipa::path(
    post,
    path = "/api/sessions/",
    operation_id = "session_create",
    tag = "Experiment Sessions",
    request_body = CreateRequest,
    responses((status = 201, body = SessionView)),
    security(("OAuth2" = ["sessions:write"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Auth(auth): Auth,
    base: BaseUrl,
    body: JsonObject,
) -> Result<Response> {
    let c = CreateRequest::read(&body)?;
    let create = sessions::Create {
        experiment: c.experiment,
        participant: c.participant,
        messages: c.messages,
        state: c.state,
    };
    let s = sessions::create_seeded(&state.domain, auth.team_id, auth.user_id, create).await?;
    let view = summary_view(&base, s);
    let mut resp = (StatusCode::CREATED, Json(&view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&view.url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Retrieve Session
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/",
    operation_id = "session_retrieve",
    tag = "Experiment Sessions",
    params(("id" = String, Path, description = "ID of the session")),
    responses((status = 200, body = SessionDetailView)),
    security(("OAuth2" = ["sessions:read"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn retrieve(
    State(state): State<AppState>,
    Auth(auth): Auth,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<SessionDetailView>> {
    let d = sessions::detail(&state.domain, auth.team_id, &id).await?;
    Ok(Json(detail_view(&base, d)))
}

/// End Session
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/end_experiment_session/",
    operation_id = "session_end",
    tag = "Experiment Sessions",
    params(("id" = String, Path, description = "ID of the session")),
    responses((status = 200, description = "Ended (empty body)")),
    security(("OAuth2" = ["sessions:write"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn end(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    // The original's message forgot to fill in the id; its prefix is kept.
    let sid = sessions::exists(&state.domain, auth.team_id, &id)
        .await?
        .ok_or_else(|| ApiError::plain(StatusCode::NOT_FOUND, "Session not found:{id}"))?;
    let mut tx = state.domain.begin().await?;
    sessions::end(&mut tx, auth.team_id, sid, sessions::EndedBy::Api).await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}

/// Validates `{"tags": [...]}` before the session is looked up, as the original.
fn parse_tags(body: &JsonObject) -> Result<Vec<String>, ApiError> {
    let v = body.0.get("tags");
    let falsy = match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Object(o)) => o.is_empty(),
    };
    if falsy {
        return Err(ApiError::plain(
            StatusCode::BAD_REQUEST,
            "Missing 'tags' in request",
        ));
    }
    let Some(Value::Array(items)) = v else {
        return Err(ApiError::plain(
            StatusCode::BAD_REQUEST,
            "'tags' must be a list",
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        match i.as_str() {
            Some(s) if !s.trim().is_empty() => {
                if s.chars().count() > domain::tags::MAX_NAME_LEN {
                    return Err(ApiError::plain(
                        StatusCode::BAD_REQUEST,
                        "Tag names must be at most 100 characters",
                    ));
                }
                out.push(s.to_string());
            }
            _ => {
                return Err(ApiError::plain(
                    StatusCode::BAD_REQUEST,
                    "'tags' must be a list of non-empty strings",
                ));
            }
        }
    }
    Ok(out)
}

async fn session_for_action(
    state: &AppState,
    team_id: domain::TeamId,
    id: &str,
) -> Result<domain::SessionId, ApiError> {
    sessions::exists(&state.domain, team_id, id)
        .await?
        .ok_or_else(|| ApiError::plain(StatusCode::NOT_FOUND, format!("Session not found: {id}")))
}

/// Add Tags
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/tags/",
    operation_id = "session_add_tags",
    tag = "Experiment Sessions",
    params(("id" = String, Path, description = "ID of the session")),
    request_body = TagsView,
    responses((status = 200, body = TagsView)),
    security(("OAuth2" = ["sessions:write"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn add_tags(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<TagsView>> {
    change_tags(state, auth, id, body, true).await
}

/// Validates, finds the session, applies the change, answers the tags now on it.
async fn change_tags(
    state: AppState,
    auth: domain::auth::AuthContext,
    id: String,
    body: JsonObject,
    add: bool,
) -> Result<Json<TagsView>> {
    let names = parse_tags(&body)?;
    let sid = session_for_action(&state, auth.team_id, &id).await?;
    let db = &state.domain;
    if add {
        domain::tags::add_to_session(db, auth.team_id, sid.0, &names, auth.user_id.map(i64::from))
            .await?;
    } else {
        domain::tags::remove_from_session(db, auth.team_id, sid.0, &names).await?;
    }
    Ok(Json(TagsView {
        tags: sessions::tag_names(db, sid).await?,
    }))
}

/// Remove Tags
#[utoipa::path(
    delete,
    path = "/api/sessions/{id}/tags/",
    operation_id = "session_remove_tags",
    tag = "Experiment Sessions",
    params(("id" = String, Path, description = "ID of the session")),
    request_body = TagsView,
    responses((status = 200, body = TagsView)),
    security(("OAuth2" = ["sessions:write"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn remove_tags(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<TagsView>> {
    change_tags(state, auth, id, body, false).await
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = update_state_response)]
pub struct UpdateStateView {
    pub success: bool,
    #[schema(value_type = Object)]
    pub state: Value,
}

/// Update Session State
#[utoipa::path(
    patch,
    path = "/api/sessions/{id}/update_state/",
    operation_id = "session_update_state",
    tag = "Experiment Sessions",
    params(("id" = String, Path, description = "ID of the session")),
    responses((status = 200, body = UpdateStateView)),
    security(("OAuth2" = ["sessions:write"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn update_state(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<UpdateStateView>> {
    let new_state = body.0.get("state").cloned().unwrap_or(Value::Null);
    let falsy = match &new_state {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if falsy {
        return Err(ApiError::plain(
            StatusCode::BAD_REQUEST,
            "Missing 'state' in request",
        ));
    }
    let sid = session_for_action(&state, auth.team_id, &id).await?;
    sessions::replace_state(&state.domain, sid, &new_state).await?;
    Ok(Json(UpdateStateView {
        success: true,
        state: new_state,
    }))
}
