//! `GET /api/experiments/` and `GET /api/experiments/{id}/`: a team's live
//! chatbots (working versions) with their live versions.

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::get;
use domain::chatbots::{self, Chatbot, Version};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::Result;
use crate::pagination::{Paginated, envelope, page_request};
use crate::routes::Routes;
use crate::url::BaseUrl;
use crate::{ApiError, AppState};

pub fn router() -> Routes {
    Routes::new()
        .route("/api/experiments/", get(list))
        .route("/api/experiments/{id}/", get(retrieve))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Experiment)]
pub struct ExperimentView {
    pub id: uuid::Uuid,
    pub name: String,
    /// Absolute URL of this chatbot.
    pub url: String,
    /// The number the next version will get.
    pub version_number: i32,
    pub versions: Vec<ExperimentVersionView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExperimentVersion)]
pub struct ExperimentVersionView {
    pub name: String,
    pub version_number: i32,
    pub is_default_version: bool,
    pub version_description: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PaginatedExperimentList)]
pub struct PaginatedExperimentListDoc {
    next: Option<String>,
    previous: Option<String>,
    results: Vec<ExperimentView>,
    /// Total number of items matching the query. Only present on the first page.
    count: Option<u64>,
}

fn version_view(v: Version) -> ExperimentVersionView {
    ExperimentVersionView {
        name: v.name,
        version_number: v.version_number,
        is_default_version: v.is_default_version,
        version_description: v.version_description,
    }
}

fn view(base: &BaseUrl, c: Chatbot) -> ExperimentView {
    ExperimentView {
        url: base.absolute(&format!("/api/experiments/{}/", c.id)),
        id: c.id,
        name: c.name,
        version_number: c.version_number,
        versions: c.versions.into_iter().map(version_view).collect(),
    }
}

/// List Chatbots
#[utoipa::path(
    get,
    path = "/api/experiments/",
    operation_id = "experiment_list",
    tag = "Experiments",
    params(
        ("cursor" = Option<String>, Query, description = "The pagination cursor value."),
        ("page_size" = Option<i64>, Query, description = "Number of results to return per page."),
    ),
    responses((status = 200, body = PaginatedExperimentListDoc)),
    security(("OAuth2" = ["chatbots:read"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(auth): Auth,
    base: BaseUrl,
) -> Result<Json<Paginated<ExperimentView>>> {
    let req = page_request(base.query.as_deref());
    let page = chatbots::list(&state.domain, auth.team_id, &req).await?;
    Ok(Json(envelope(&base, page, |c| view(&base, c))))
}

/// Retrieve Chatbot
#[utoipa::path(
    get,
    path = "/api/experiments/{id}/",
    operation_id = "experiment_retrieve",
    tag = "Experiments",
    params(("id" = String, Path, description = "Experiment ID")),
    responses((status = 200, body = ExperimentView)),
    security(("OAuth2" = ["chatbots:read"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn retrieve(
    State(state): State<AppState>,
    Auth(auth): Auth,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<ExperimentView>> {
    let id = uuid::Uuid::parse_str(id.trim())
        .map_err(|_| ApiError::Domain(domain::Error::not_found("Not found.")))?;
    let bot = chatbots::get(&state.domain, auth.team_id, id).await?;
    Ok(Json(view(&base, bot)))
}
