//! Authentication by default: every route behind `require_auth` needs a valid
//! API key (as `X-Api-Key`, or `Authorization: Bearer`) or a console sign-in's
//! `sessionid` cookie (the contract's `cookieAuth`; unsafe methods then need
//! the sign-in's CSRF token in `X-CSRFToken`, as Django asks). Read-only
//! callers may only use safe methods. Handlers take the caller as the `Auth`
//! extractor.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::Error;
use domain::auth::{AuthContext, INVALID_TOKEN, NOT_PROVIDED};

use crate::{ApiError, AppState};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Auth(pub AuthContext);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthContext>()
            .cloned()
            .map(Auth)
            .ok_or(ApiError::Domain(Error::Unauthenticated(NOT_PROVIDED)))
    }
}

enum Presented<'a> {
    None,
    Key(&'a str),
    Malformed,
}

fn presented_key(headers: &HeaderMap) -> Presented<'_> {
    if let Some(v) = headers.get("x-api-key") {
        return match v.to_str() {
            Ok(s) => Presented::Key(s),
            Err(_) => Presented::Malformed,
        };
    }
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let Ok(s) = v.to_str() else {
            return Presented::Malformed;
        };
        let mut parts = s.trim().splitn(2, char::is_whitespace);
        let scheme = parts.next().unwrap_or("");
        if scheme.eq_ignore_ascii_case("bearer") {
            return match parts.next().map(str::trim) {
                Some(token) if !token.is_empty() => Presented::Key(token),
                _ => Presented::Malformed,
            };
        }
    }
    Presented::None
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The console's session cookie and CSRF header (Django's names, which the
/// contract's `cookieAuth` and the original's pages use).
pub const SESSION_COOKIE: &str = "sessionid";
pub const CSRF_HEADER: &str = "x-csrftoken";

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The caller a console cookie stands for, when the request carries one;
/// an unsafe request must also carry the sign-in's CSRF token.
pub async fn console_caller(
    state: &AppState,
    headers: &HeaderMap,
    unsafe_method: bool,
) -> Result<Option<AuthContext>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let sign_in = domain::signins::find(&state.domain, token)
        .await?
        .ok_or(Error::Unauthenticated(NOT_PROVIDED))?;
    if unsafe_method {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !domain::signins::csrf_matches(&sign_in, sent) {
            return Err(ApiError::Detail(
                axum::http::StatusCode::FORBIDDEN,
                "CSRF Failed: CSRF token missing or incorrect.".into(),
            ));
        }
    }
    Ok(Some(
        domain::signins::api_caller(&state.domain, &sign_in).await?,
    ))
}

pub async fn require_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ctx = match presented_key(req.headers()) {
        Presented::None => {
            let unsafe_method = !is_safe(req.method());
            match console_caller(&state, req.headers(), unsafe_method).await {
                Ok(Some(ctx)) => ctx,
                Ok(None) => {
                    return ApiError::Domain(Error::Unauthenticated(NOT_PROVIDED)).into_response();
                }
                Err(e) => return e.into_response(),
            }
        }
        Presented::Malformed => {
            return ApiError::Domain(Error::Unauthenticated(INVALID_TOKEN)).into_response();
        }
        Presented::Key(key) => match domain::auth::authenticate_api_key(&state.domain, key).await {
            Ok(ctx) => ctx,
            Err(e) => return ApiError::Domain(e).into_response(),
        },
    };
    if !is_safe(req.method()) && ctx.read_only {
        return ApiError::Domain(Error::PermissionDenied).into_response();
    }
    req.extensions_mut().insert(ctx);
    next.run(req).await
}
