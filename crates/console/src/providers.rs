//! A team's LLM providers on the team page: added with their key (sealed,
//! never shown again), removed, and a "test connection" that asks the
//! provider for a one-word answer with the model given; and the team's own
//! prices for models (overriding the shipped price table from now on).
//!
//! An endpoint typed into the console must resolve to public addresses (the
//! outbound policy: `--outbound-allow` lets an operator permit a local model
//! server); operators adding providers from the command line are not limited.

use std::time::Instant;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::providers::NewProvider;
use domain::teams::Permission;
use llm::{ChatMessage, CompletionRequest, LlmClient, Role};
use serde::Deserialize;

use api::AppState;

use crate::error::PageError;
use crate::member::Member;
use crate::team;

#[derive(Deserialize)]
pub struct NewForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

pub async fn add(
    State(state): State<AppState>,
    m: Member,
    Form(f): Form<NewForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    let base_url = Some(f.base_url.trim().to_string()).filter(|u| !u.is_empty());
    if let Some(u) = &base_url {
        let refused = match url::Url::parse(u) {
            Ok(parsed) => state
                .engine
                .outbound
                .check_resolved(&parsed)
                .await
                .err()
                .map(|e| e.to_string()),
            Err(e) => Some(format!("{u:?} is not a URL: {e}")),
        };
        if let Some(why) = refused {
            let msg = format!("The endpoint is refused: {why}");
            return team::notice(&state, &m, StatusCode::BAD_REQUEST, Err(msg)).await;
        }
    }
    let added = domain::providers::add(
        &state.domain,
        &state.domain.secrets,
        m.team.id,
        NewProvider {
            name: f.name.trim().to_string(),
            kind: f.kind.trim().to_string(),
            base_url,
            api_key: Some(f.api_key.trim().to_string()).filter(|k| !k.is_empty()),
            ..Default::default()
        },
    )
    .await;
    match added {
        Ok(_) => Ok(m.go("team/")),
        Err(e) => team::refused(&state, &m, e).await,
    }
}

#[derive(Deserialize)]
pub struct Csrf {
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

pub async fn remove(
    State(state): State<AppState>,
    m: Member,
    Path((_, name)): Path<(String, String)>,
    Form(f): Form<Csrf>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    match domain::providers::remove(&state.domain, m.team.id, &name).await {
        Ok(()) => Ok(m.go("team/")),
        Err(e) => team::refused(&state, &m, e).await,
    }
}

#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default)]
    model: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// One short completion, no retries: the answer or the provider's refusal.
pub async fn test(
    State(state): State<AppState>,
    m: Member,
    Path((_, name)): Path<(String, String)>,
    Form(f): Form<TestForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    let model = f.model.trim();
    if model.is_empty() {
        let msg = "Name a model to test with (e.g. gpt-4o-mini).".to_string();
        return team::notice(&state, &m, StatusCode::BAD_REQUEST, Err(msg)).await;
    }
    let access = match state.engine.provider_access(m.team.id, &name).await {
        Ok(a) => a,
        Err(engine::error::TurnError::Domain(e)) => return Err(e.into()),
        Err(e) => {
            return team::notice(&state, &m, StatusCode::BAD_REQUEST, Err(e.to_string())).await;
        }
    };
    let client: std::sync::Arc<dyn LlmClient> = match state.engine.provider_config(&access) {
        Ok(mut cfg) => {
            cfg.max_retries = 0;
            llm::client_for(&cfg, &llm::http::client())
        }
        Err(e) => {
            return team::notice(&state, &m, StatusCode::BAD_REQUEST, Err(e.to_string())).await;
        }
    };
    let req = CompletionRequest {
        model: model.to_string(),
        system: None,
        messages: vec![ChatMessage::new(
            Role::User,
            "Reply with the single word OK.",
        )],
        temperature: None,
        max_tokens: Some(8),
        response_schema: None,
        tools: Vec::new(),
        built_in: Vec::new(),
    };
    let started = Instant::now();
    let outcome = match client.complete(&req).await {
        Ok(c) => Ok(format!(
            "{name} answered with {} in {} ms: {:?}",
            c.model,
            started.elapsed().as_millis(),
            c.text.chars().take(80).collect::<String>()
        )),
        Err(e) => Err(format!("{name} did not answer: {e}")),
    };
    team::notice(&state, &m, StatusCode::OK, outcome).await
}

#[derive(Deserialize)]
pub struct PriceForm {
    #[serde(default)]
    provider_kind: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    usd_per_1m: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// Sets the team's price for a model and token kind, in force from now.
pub async fn set_price(
    State(state): State<AppState>,
    m: Member,
    Form(f): Form<PriceForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    let model = f.model.trim();
    let checked = if !domain::providers::KINDS.contains(&f.provider_kind.as_str()) {
        Err(format!("{:?} is not a provider type", f.provider_kind))
    } else if model.is_empty() || model.len() > 200 {
        Err("Name the model (as the provider reports it).".to_string())
    } else {
        domain::pricing::ServiceKind::parse(&f.kind)
            .ok_or_else(|| format!("{:?} is not a token kind", f.kind))
    };
    let set = match checked {
        Ok(kind) => {
            domain::pricing::set_override(
                &state.domain.db.write,
                m.team.id,
                &f.provider_kind,
                model,
                kind,
                &f.usd_per_1m,
                chrono::Utc::now(),
            )
            .await
        }
        Err(msg) => Err(domain::Error::BadRequest(msg)),
    };
    match set {
        Ok(_) => Ok(m.go("team/")),
        Err(e) => team::refused(&state, &m, e).await,
    }
}
