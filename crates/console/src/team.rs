//! The team page: its members and roles, and its API keys (prefixes only).

use axum::extract::State;
use axum::response::Response;
use domain::teams::Permission;
use minijinja::context;

use api::AppState;

use crate::error::PageError;
use crate::member::Member;
use crate::render;
use crate::sessions::when;

pub async fn show(State(state): State<AppState>, m: Member) -> Result<Response, PageError> {
    m.require(Permission::ManageTeam)?;
    let members = domain::users::members(&state.domain, m.team.id).await?;
    let keys = domain::keys::list(&state.domain, m.team.id).await?;
    render::page(
        "team.html",
        context! {
            ..m.frame("team"),
            ..context! {
                members => members.iter().map(|u| context! {
                    email => u.email,
                    role => u.role.label(),
                    can_sign_in => u.can_sign_in,
                    active => u.is_active,
                }).collect::<Vec<_>>(),
                keys => keys.iter().map(|k| context! {
                    prefix => k.prefix,
                    name => k.name,
                    read_only => k.read_only,
                    revoked => k.revoked,
                    created_at => when(k.created_at),
                }).collect::<Vec<_>>(),
            }
        },
    )
}
