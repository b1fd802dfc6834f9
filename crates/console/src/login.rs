//! Signing in and out. The sign-in form is protected from cross-site posts
//! by a double-submitted token (the `csrftoken` cookie must equal the form's
//! `csrfmiddlewaretoken`, Django's names); failed attempts are limited per
//! client address and per email.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use api::AppState;
use api::auth::{SESSION_COOKIE, cookie};
use api::chat::{PeerAddr, client_ip};

use crate::Console;
use crate::error::{PageError, redirect};
use crate::member::SignedIn;
use crate::render;

pub const CSRF_COOKIE: &str = "csrftoken";

/// `/`: the team's chatbots for a signed-in person, else the sign-in page.
pub async fn home(
    State(state): State<AppState>,
    who: Option<SignedIn>,
) -> Result<Response, PageError> {
    let Some(who) = who else {
        return Ok(redirect("/login/"));
    };
    let places = domain::users::places(&state.domain, who.sign_in.user_id).await?;
    let place = who
        .sign_in
        .team_id
        .and_then(|t| places.iter().find(|p| p.team_id == t))
        .or(places.first());
    match place {
        Some(p) => Ok(redirect(&format!("/a/{}/chatbots/", p.slug))),
        None => Err(PageError::BadRequest(
            "You are not a member of any team. Ask a team admin to add you.".into(),
        )),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: a path of this site, else home.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local { next } else { "/" }
}

/// Whether cookies must be `Secure`: served over https here or, by a proxy's
/// word, in front of us.
fn secure(console: &Console, headers: &HeaderMap) -> bool {
    console.always_secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn set_cookie(
    resp: &mut Response,
    name: &str,
    value: &str,
    http_only: bool,
    secure: bool,
    max_age: i64,
) {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The sign-in form (with a fresh double-submit token when none is set).
fn form_page(
    console: &Console,
    headers: &HeaderMap,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let existing = cookie(headers, CSRF_COOKIE)
        .filter(|t| t.len() >= 32 && t.len() <= 64)
        .map(str::to_string);
    let token = existing.clone().unwrap_or_else(domain::signins::new_token);
    let mut resp = render::page(
        "login.html",
        context! { csrf => token, next => next, email => email, error => error },
    )?;
    if existing.is_none() {
        set_cookie(
            &mut resp,
            CSRF_COOKIE,
            &token,
            false,
            secure(console, headers),
            31_449_600,
        );
    }
    Ok(resp)
}

pub async fn form(
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Result<Response, PageError> {
    form_page(&console, &headers, safe_next(&q.next), "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
    #[serde(default)]
    next: String,
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, CSRF_COOKIE).unwrap_or("");
    let sent = f.csrfmiddlewaretoken.as_bytes();
    if expected.is_empty() || !bool::from(sent.ct_eq(expected.as_bytes())) {
        return Err(PageError::Csrf);
    }
    let by_client = format!("login-ip:{}", client_ip(peer));
    let by_email = format!("login-email:{}", f.email.trim().to_lowercase());
    let limits = &console.login_failures;
    if let Some(d) = [limits.peek(&by_client), limits.peek(&by_email)]
        .into_iter()
        .find(|d| !d.allowed)
    {
        return Err(PageError::TooManyAttempts(d.reset_secs));
    }
    let next = safe_next(&f.next);
    let Some(user_id) = domain::users::verify_login(&state.domain, &f.email, &f.password).await?
    else {
        limits.check(&by_client);
        limits.check(&by_email);
        tracing::info!(client = %client_ip(peer), "console: failed sign-in");
        return form_page(
            &console,
            &headers,
            next,
            f.email.trim(),
            Some("Please enter a correct email and password."),
        );
    };
    let places = domain::users::places(&state.domain, user_id).await?;
    let (token, sign_in) =
        domain::signins::open(&state.domain, user_id, places.first().map(|p| p.team_id)).await?;
    let mut resp = redirect(next);
    let secure = secure(&console, &headers);
    let age = domain::signins::LIFETIME.num_seconds();
    set_cookie(&mut resp, SESSION_COOKIE, &token, true, secure, age);
    // Pages' scripts send this as `X-CSRFToken` to the API (Django's way).
    set_cookie(
        &mut resp,
        CSRF_COOKIE,
        &sign_in.csrf_token,
        false,
        secure,
        age,
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    who: SignedIn,
    Form(f): Form<LogoutForm>,
) -> Result<Response, PageError> {
    if !domain::signins::csrf_matches(&who.sign_in, &f.csrfmiddlewaretoken) {
        return Err(PageError::Csrf);
    }
    domain::signins::end(&state.domain, &who.token).await?;
    let mut resp = redirect("/login/");
    let secure = secure(&console, &headers);
    set_cookie(&mut resp, SESSION_COOKIE, "", true, secure, 0);
    set_cookie(&mut resp, CSRF_COOKIE, "", false, secure, 0);
    Ok(resp.into_response())
}
