//! The authorization endpoint, `/o/authorize/`: the consent page of the
//! OAuth2 code flow. A signed-out visitor signs in first and comes back; a
//! signed-in member of the application's team sees the application, its
//! team and the scopes it asks for, and allows or denies. The client hears
//! the answer at its registered redirect URI; a request whose client or
//! redirect URI is not known good is refused on a page instead (RFC 6749
//! §4.1.2.1), so a forged link cannot bounce anyone to a foreign site.
//!
//! `prompt=none` asks for no page at all: the client gets `login_required`
//! or `consent_required` back (consent is asked every time; approvals are
//! not remembered).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::oauth::codes::{self, AuthorizeParams, AuthorizeRequest, Refusal, RefusalOr};
use domain::oauth::{ErrorCode, OAuthFailure};
use domain::signins;
use minijinja::context;

use api::AppState;

use crate::error::{PageError, error_page, redirect};
use crate::member::SignedIn;
use crate::render::page;

/// Where the client is sent back: its redirect URI with `pairs` added to
/// the query it already has.
fn back_to_client(redirect_uri: &str, pairs: &[(&str, Option<&str>)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page(StatusCode::BAD_REQUEST, "The redirect URI is not valid.");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
    }
    redirect(url.as_str())
}

fn refused(r: RefusalOr) -> Response {
    match r {
        RefusalOr::Refused(Refusal::Shown(message)) => {
            error_page(StatusCode::BAD_REQUEST, &message)
        }
        RefusalOr::Refused(Refusal::Redirected {
            redirect_uri,
            failure,
            state,
        }) => tell_client(&redirect_uri, &failure, state.as_deref()),
        RefusalOr::Failed(e) => axum::response::IntoResponse::into_response(PageError::from(e)),
    }
}

fn tell_client(redirect_uri: &str, f: &OAuthFailure, state: Option<&str>) -> Response {
    back_to_client(
        redirect_uri,
        &[
            ("error", Some(f.code.as_str())),
            ("error_description", Some(&f.description)),
            ("state", state),
        ],
    )
}

/// `GET /o/authorize/`: the consent page.
pub async fn form(
    State(state): State<AppState>,
    Query(params): Query<AuthorizeParams>,
    signed_in: Result<SignedIn, PageError>,
) -> Result<Response, PageError> {
    let req = match codes::check(&state.domain, &params).await {
        Ok(r) => r,
        Err(r) => return Ok(refused(r)),
    };
    let silent = params.prompt.as_deref() == Some("none");
    let SignedIn { sign_in, .. } = match signed_in {
        Ok(s) => s,
        Err(PageError::SignedOut { .. }) if silent => {
            return Ok(to_client(
                &req,
                ErrorCode::LoginRequired,
                "sign-in required",
            ));
        }
        Err(e) => return Err(e),
    };
    let member = domain::users::role_in(&state.domain, sign_in.user_id, req.app.team_id)
        .await?
        .is_some();
    if !member {
        return Ok(to_client(
            &req,
            ErrorCode::AccessDenied,
            "you are not a member of this application's team",
        ));
    }
    if silent {
        return Ok(to_client(
            &req,
            ErrorCode::ConsentRequired,
            "consent required",
        ));
    }
    let team = domain::teams::by_id(&state.domain, req.app.team_id).await?;
    let email = domain::users::email(&state.domain, sign_in.user_id).await?;
    let (challenge, method) = match &req.challenge {
        Some((c, m)) => (c.as_str(), m.as_str()),
        None => ("", ""),
    };
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    page(
        "authorize.html",
        context! {
            csrf => sign_in.csrf_token,
            app => context! { name => req.app.name, client_id => req.app.client_id },
            team_name => team.name,
            email => email,
            redirect_host => redirect_host,
            scopes => req.scopes.iter().map(|s| context! {
                name => s.as_str(), description => s.description(),
            }).collect::<Vec<_>>(),
            hidden => context! {
                response_type => "code",
                client_id => req.app.client_id,
                redirect_uri => req.redirect_uri,
                scope => req.scopes.to_string(),
                state => req.state.clone().unwrap_or_default(),
                code_challenge => challenge,
                code_challenge_method => method,
            },
        },
    )
}

fn to_client(req: &AuthorizeRequest, code: ErrorCode, description: &str) -> Response {
    tell_client(
        &req.redirect_uri,
        &OAuthFailure::new(code, description),
        req.state.as_deref(),
    )
}

/// `POST /o/authorize/`: the person's answer.
pub async fn decide(
    State(state): State<AppState>,
    SignedIn { sign_in, .. }: SignedIn,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let field = |k: &str| f.get(k).filter(|v| !v.is_empty()).cloned();
    if !signins::csrf_matches(&sign_in, &field("csrfmiddlewaretoken").unwrap_or_default()) {
        return Err(PageError::Csrf);
    }
    let params = AuthorizeParams {
        response_type: field("response_type"),
        client_id: field("client_id"),
        redirect_uri: field("redirect_uri"),
        scope: field("scope"),
        state: field("state"),
        code_challenge: field("code_challenge"),
        code_challenge_method: field("code_challenge_method"),
        prompt: None,
    };
    let req = match codes::check(&state.domain, &params).await {
        Ok(r) => r,
        Err(r) => return Ok(refused(r)),
    };
    if field("allow").is_none() {
        return Ok(to_client(
            &req,
            ErrorCode::AccessDenied,
            "the user denied access",
        ));
    }
    match codes::grant(&state.domain, &req, sign_in.user_id).await {
        Ok(code) => Ok(back_to_client(
            &req.redirect_uri,
            &[("code", Some(&code)), ("state", req.state.as_deref())],
        )),
        Err(r) => Ok(refused(r)),
    }
}
