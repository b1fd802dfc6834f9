//! A team's OAuth2 applications, for its admins: the list (client ids, never
//! secrets), a new one registered with its client secret shown once on the
//! page that made it, and removal (every token it was given stops working).
//! The rules (redirect URIs, what each kind may have) are the domain's; the
//! page shows its refusals on the form, keeping what was typed.

use axum::extract::{Path, RawForm, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::oauth::{App, AppKind, NewApp};
use domain::teams::Permission;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use api::AppState;

use crate::error::PageError;
use crate::member::Member;
use crate::render;
use crate::sessions::when;

/// What the form holds: blank for a new page, or what was sent when the
/// domain refused it (so nothing typed is lost).
struct Draft {
    name: String,
    machine: bool,
    public: bool,
    redirect_uris: String,
    chatbots: Vec<String>,
    pkce_required: bool,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            name: String::new(),
            machine: false,
            public: false,
            redirect_uris: String::new(),
            chatbots: Vec::new(),
            // PKCE protects a code even from a confidential client's leaks;
            // opting out is the exception.
            pkce_required: true,
        }
    }
}

/// The client id and secret of the application just made, shown once.
struct Shown {
    name: String,
    client_id: String,
    secret: Option<String>,
}

fn kind_label(k: AppKind) -> &'static str {
    match k {
        AppKind::User => "User-facing (authorization code)",
        AppKind::Machine => "Machine (client credentials)",
    }
}

async fn page(
    state: &AppState,
    m: &Member,
    status: StatusCode,
    draft: &Draft,
    shown: Option<Shown>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let apps = domain::oauth::apps::list(&state.domain, m.team.id).await?;
    let bots = domain::chatbots::list_all(&state.domain, m.team.id).await?;
    let bot_name = |id: &Uuid| {
        bots.iter()
            .find(|b| b.id == *id)
            .map_or_else(|| id.to_string(), |b| b.name.clone())
    };
    let row = |a: &App| {
        context! {
            name => a.name,
            client_id => a.client_id,
            kind => kind_label(a.kind),
            machine => a.kind == AppKind::Machine,
            confidential => a.confidential,
            pkce_required => a.pkce_required,
            redirect_uris => a.redirect_uris,
            chatbots => a.allowed_chatbots.iter().map(bot_name).collect::<Vec<_>>(),
            created_at => when(a.created_at),
        }
    };
    render::page_with(
        status,
        "oauth_apps.html",
        context! {
            ..m.frame("team"),
            ..context! {
                apps => apps.iter().map(row).collect::<Vec<_>>(),
                chatbots => bots.iter().map(|b| {
                    let id = b.id.to_string();
                    context! { checked => draft.chatbots.contains(&id), id => id, name => b.name }
                }).collect::<Vec<_>>(),
                draft => context! {
                    name => draft.name,
                    machine => draft.machine,
                    public => draft.public,
                    redirect_uris => draft.redirect_uris,
                    pkce_required => draft.pkce_required,
                },
                shown => shown.map(|s| context! {
                    name => s.name, client_id => s.client_id, secret => s.secret,
                }),
                error => error,
            }
        },
    )
}

pub async fn list(State(state): State<AppState>, m: Member) -> Result<Response, PageError> {
    m.require(Permission::ManageTeam)?;
    page(&state, &m, StatusCode::OK, &Draft::default(), None, None).await
}

/// The form's fields. Parsed by hand rather than with `Form`, because the
/// chatbot checkboxes repeat one name, which `serde_urlencoded` cannot
/// gather into a list.
fn read_form(body: &[u8]) -> (Draft, String) {
    let mut d = Draft {
        pkce_required: false,
        ..Draft::default()
    };
    let mut csrf = String::new();
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "name" => d.name = v.into_owned(),
            "kind" => d.machine = v == "machine",
            "public" => d.public = true,
            "redirect_uris" => d.redirect_uris = v.into_owned(),
            "chatbot" => d.chatbots.push(v.into_owned()),
            "pkce_required" => d.pkce_required = true,
            "csrfmiddlewaretoken" => csrf = v.into_owned(),
            _ => {}
        }
    }
    (d, csrf)
}

/// The chosen chatbots' ids, each one of the team's (the checkboxes only
/// offer those, so anything else is a tampered or stale form).
async fn chosen_chatbots(state: &AppState, m: &Member, d: &Draft) -> Result<Vec<Uuid>, PageError> {
    let bots = domain::chatbots::list_all(&state.domain, m.team.id).await?;
    d.chatbots
        .iter()
        .map(|s| {
            Uuid::parse_str(s.trim())
                .ok()
                .filter(|id| bots.iter().any(|b| b.id == *id))
                .ok_or_else(|| {
                    PageError::BadRequest(format!("{s:?} is not one of the team's chatbots"))
                })
        })
        .collect()
}

/// Registers an application; its secret is on this response only.
pub async fn create(
    State(state): State<AppState>,
    m: Member,
    RawForm(body): RawForm,
) -> Result<Response, PageError> {
    let (draft, csrf) = read_form(&body);
    m.may(Permission::ManageTeam, &csrf)?;
    let refused = async |msg: String| {
        page(&state, &m, StatusCode::BAD_REQUEST, &draft, None, Some(msg)).await
    };
    let chatbots = match chosen_chatbots(&state, &m, &draft).await {
        Ok(c) => c,
        Err(PageError::BadRequest(msg)) => return refused(msg).await,
        Err(e) => return Err(e),
    };
    let new = NewApp {
        name: draft.name.clone(),
        kind: if draft.machine {
            AppKind::Machine
        } else {
            AppKind::User
        },
        public: draft.public,
        redirect_uris: draft
            .redirect_uris
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        chatbots,
        pkce_required: draft.pkce_required,
    };
    match domain::oauth::apps::create(&state.domain, m.team.id, Some(m.sign_in.user_id), new).await
    {
        Ok((app, secret)) => {
            let shown = Shown {
                name: app.name,
                client_id: app.client_id,
                secret,
            };
            let blank = Draft::default();
            page(&state, &m, StatusCode::OK, &blank, Some(shown), None).await
        }
        Err(e) => refused(crate::error::refusal(e)?).await,
    }
}

#[derive(Deserialize)]
pub struct Csrf {
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// Removes one of the team's applications (another team's is not found).
pub async fn remove(
    State(state): State<AppState>,
    m: Member,
    Path((_, client_id)): Path<(String, String)>,
    axum::extract::Form(f): axum::extract::Form<Csrf>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageTeam, &f.csrfmiddlewaretoken)?;
    domain::oauth::apps::remove(&state.domain, m.team.id, &client_id).await?;
    Ok(m.go("team/oauth-apps/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_gathers_repeated_chatbots_and_unticked_boxes_are_off() {
        let (d, csrf) = read_form(
            b"csrfmiddlewaretoken=t&name=Ops+bot&kind=machine&chatbot=a&chatbot=b&redirect_uris=x%0Ay",
        );
        assert_eq!(csrf, "t");
        assert_eq!(d.name, "Ops bot");
        assert!(d.machine && !d.public && !d.pkce_required);
        assert_eq!(d.chatbots, ["a", "b"]);
        assert_eq!(d.redirect_uris, "x\ny");
    }
}
