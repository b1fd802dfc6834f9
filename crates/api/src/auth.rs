//! Authentication by default: every route behind `require_auth` needs a valid
//! API key (as `X-Api-Key`, or `Authorization: Bearer`) or a console sign-in's
//! `sessionid` cookie (the contract's `cookieAuth`; unsafe methods then need
//! the sign-in's CSRF token in `X-CSRFToken`, as Django asks). Read-only
//! callers may only use safe methods. Handlers take the caller as the `Auth`
//! extractor. An OAuth2 access token (`Authorization: Bearer`) is a caller
//! too, limited by its scopes ([`scoped`]).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::Error;
use domain::auth::{AuthContext, INVALID_TOKEN, NOT_PROVIDED};
use domain::oauth::Scope;

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
    /// `Authorization: Bearer`: an OAuth2 access token or an API key.
    Bearer(&'a str),
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
                Some(token) if !token.is_empty() => Presented::Bearer(token),
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

/// A bearer token is tried as an OAuth2 access token first, then as an API
/// key (the original's authenticator order). OAuth tokens never contain a
/// `.` and API keys always do, so each is looked up only where it can be.
/// When neither admits it, the challenge says the token was refused.
async fn bearer_caller(state: &AppState, token: &str) -> Result<AuthContext, Response> {
    let found = if token.contains('.') {
        domain::auth::authenticate_api_key(&state.domain, token)
            .await
            .map(Some)
    } else {
        domain::oauth::tokens::caller(&state.domain, token).await
    };
    match found {
        Ok(Some(ctx)) => Ok(ctx),
        Ok(None) => Err(invalid_token(Error::Unauthenticated(INVALID_TOKEN))),
        Err(e @ Error::Unauthenticated(_)) => Err(invalid_token(e)),
        Err(e) => Err(ApiError::Domain(e).into_response()),
    }
}

fn invalid_token(e: Error) -> Response {
    let mut r = ApiError::Domain(e).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"api\",error=\"invalid_token\",error_description=\"The access token is invalid.\"",
        ),
    );
    r
}

/// The OAuth2 scopes a group of routes needs: `read` for safe methods,
/// `write` for the rest (the contract's per-operation scopes).
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub read: Scope,
    pub write: Scope,
}

/// Puts a group of routes behind its scopes; callers with an access token
/// lacking the scope get 403 and a challenge naming it (RFC 6750 §3.1).
/// API keys and console cookies carry no scopes and pass.
pub fn scoped(routes: crate::Routes, read: Scope, write: Scope) -> crate::Routes {
    routes.map(|r| {
        r.layer(axum::middleware::from_fn_with_state(
            Needs { read, write },
            require_scope,
        ))
    })
}

async fn require_scope(State(needs): State<Needs>, req: Request, next: Next) -> Response {
    let scope = if is_safe(req.method()) {
        needs.read
    } else {
        needs.write
    };
    let grant = req
        .extensions()
        .get::<AuthContext>()
        .and_then(|c| c.oauth.as_ref());
    if !domain::oauth::tokens::allows(grant, scope) {
        let mut r = ApiError::Domain(Error::PermissionDenied).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!(
            "Bearer realm=\"api\",error=\"insufficient_scope\",scope=\"{scope}\""
        )) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return r;
    }
    next.run(req).await
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
        Presented::Bearer(token) => match bearer_caller(&state, token).await {
            Ok(ctx) => ctx,
            Err(r) => return r,
        },
    };
    if !is_safe(req.method()) && ctx.read_only {
        return ApiError::Domain(Error::PermissionDenied).into_response();
    }
    req.extensions_mut().insert(ctx);
    next.run(req).await
}
