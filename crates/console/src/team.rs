//! The team page: members and their roles (added with a password shown once,
//! role changed, removed), API keys (created and shown once, revoked). Only
//! an owner gives or takes the owner role; the last owner stays.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::UserId;
use domain::teams::{Permission, Role};
use domain::users::Password;
use minijinja::{Value, context};
use serde::Deserialize;

use api::AppState;

use crate::error::PageError;
use crate::member::Member;
use crate::render;
use crate::sessions::when;

/// A secret to show once on the page that made it.
struct Shown {
    what: &'static str,
    text: String,
}

/// The team page with the outcome of an action that has no page of its own
/// (a provider's test: what it answered, or why it failed).
pub async fn notice(
    state: &AppState,
    m: &Member,
    status: StatusCode,
    outcome: Result<String, String>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(note) => page(state, m, status, None, None, Some(note)).await,
        Err(error) => page(state, m, status, None, Some(error), None).await,
    }
}

async fn page(
    state: &AppState,
    m: &Member,
    status: StatusCode,
    shown: Option<Shown>,
    error: Option<String>,
    note: Option<String>,
) -> Result<Response, PageError> {
    let members = domain::users::members(&state.domain, m.team.id).await?;
    let keys = domain::keys::list(&state.domain, m.team.id).await?;
    let providers = domain::providers::list(&state.domain, m.team.id).await?;
    let prices = domain::pricing::overrides(&state.domain, m.team.id).await?;
    let roles: Vec<Value> = Role::ASSIGNABLE
        .iter()
        .filter(|r| **r != Role::Owner || m.role == Role::Owner)
        .map(|r| context! { value => r.as_str(), label => r.label() })
        .collect();
    render::page_with(
        status,
        "team.html",
        context! {
            ..m.frame("team"),
            ..context! {
                members => members.iter().map(|u| context! {
                    id => u.user_id.0,
                    email => u.email,
                    role => u.role.as_str(),
                    role_label => u.role.label(),
                    can_sign_in => u.can_sign_in,
                    active => u.is_active,
                    me => u.user_id == m.sign_in.user_id,
                }).collect::<Vec<_>>(),
                keys => keys.iter().map(|k| context! {
                    prefix => k.prefix,
                    name => k.name,
                    read_only => k.read_only,
                    revoked => k.revoked,
                    created_at => when(k.created_at),
                }).collect::<Vec<_>>(),
                providers => providers.iter().map(|p| context! {
                    name => p.name,
                    kind => p.kind,
                    base_url => p.base_url,
                    has_api_key => p.has_api_key,
                }).collect::<Vec<_>>(),
                roles => roles,
                shown => shown.map(|s| context! { what => s.what, text => s.text }),
                error => error,
                note => note,
                kinds => domain::providers::KINDS,
                prices => prices.iter().map(|p| context! {
                    provider_kind => p.provider_kind,
                    model => p.model,
                    kind => p.kind.trim_start_matches("llm_"),
                    usd_per_1m => p.usd_per_1m,
                    since => when(p.since),
                }).collect::<Vec<_>>(),
            }
        },
    )
}

pub async fn show(State(state): State<AppState>, m: Member) -> Result<Response, PageError> {
    m.require(Permission::ManageTeam)?;
    page(&state, &m, StatusCode::OK, None, None, None).await
}

fn back(m: &Member) -> Response {
    m.go("team/")
}

/// A refusal the person can act on, shown on the team page.
pub async fn refused(
    state: &AppState,
    m: &Member,
    e: domain::Error,
) -> Result<Response, PageError> {
    let msg = crate::error::refusal(e)?;
    notice(state, m, StatusCode::BAD_REQUEST, Err(msg)).await
}

fn parse_role(s: &str) -> Result<Role, PageError> {
    Role::ASSIGNABLE
        .iter()
        .copied()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| PageError::BadRequest(format!("{s:?} is not a role")))
}

/// Only an owner hands out or takes away ownership.
fn may_touch(m: &Member, role: Role) -> Result<(), PageError> {
    if role == Role::Owner && m.role != Role::Owner {
        Err(PageError::Forbidden)
    } else {
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct NewKey {
    #[serde(default)]
    name: String,
    #[serde(default)]
    read_write: Option<String>,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// A key acting as the person who made it; shown on this page only.
pub async fn create_key(
    State(state): State<AppState>,
    m: Member,
    Form(f): Form<NewKey>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    let made = domain::keys::create(
        &state.domain,
        m.team.id,
        m.sign_in.user_id.0,
        &f.name,
        f.read_write.is_none(),
    )
    .await;
    match made {
        Ok((_, full)) => {
            let shown = Shown {
                what: "API key",
                text: full,
            };
            page(&state, &m, StatusCode::OK, Some(shown), None, None).await
        }
        Err(e) => refused(&state, &m, e).await,
    }
}

#[derive(Deserialize)]
pub struct Csrf {
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

pub async fn revoke_key(
    State(state): State<AppState>,
    m: Member,
    Path((_, prefix)): Path<(String, String)>,
    Form(f): Form<Csrf>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    domain::keys::revoke_in_team(&state.domain, m.team.id, &prefix).await?;
    Ok(back(&m))
}

#[derive(Deserialize)]
pub struct NewMember {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// Adds a person with a generated password, shown once to pass on.
pub async fn add_member(
    State(state): State<AppState>,
    m: Member,
    Form(f): Form<NewMember>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    let role = parse_role(&f.role)?;
    may_touch(&m, role)?;
    let password = Password::new(domain::keys::random_alnum(20));
    let added = domain::users::add_to_team(
        &state.domain.db.write,
        m.team.id,
        &f.email,
        role,
        Some(&password),
    )
    .await;
    match added {
        Ok(member) => {
            let shown = Shown {
                what: "password for the new member",
                text: format!("{}: {}", member.email, domain::users::reveal(&password)),
            };
            page(&state, &m, StatusCode::OK, Some(shown), None, None).await
        }
        Err(e) => refused(&state, &m, e).await,
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    m: Member,
    Path((_, user)): Path<(String, i64)>,
    Form(f): Form<RoleForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    let role = parse_role(&f.role)?;
    let current = domain::users::role_of(&state.domain, m.team.id, UserId(user)).await?;
    may_touch(&m, role)?;
    may_touch(&m, current)?;
    match domain::users::set_role(&state.domain.db.write, m.team.id, UserId(user), role).await {
        Ok(()) => Ok(back(&m)),
        Err(e) => refused(&state, &m, e).await,
    }
}

pub async fn remove_member(
    State(state): State<AppState>,
    m: Member,
    Path((_, user)): Path<(String, i64)>,
    Form(f): Form<Csrf>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    let current = domain::users::role_of(&state.domain, m.team.id, UserId(user)).await?;
    may_touch(&m, current)?;
    let email = domain::users::member_email(&state.domain, m.team.id, UserId(user)).await?;
    match domain::users::remove_from_team(&state.domain.db.write, m.team.id, &email).await {
        Ok(()) => Ok(back(&m)),
        Err(e) => refused(&state, &m, e).await,
    }
}
