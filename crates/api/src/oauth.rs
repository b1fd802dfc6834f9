//! The OAuth2 provider's endpoints beside the console's consent page:
//! `/o/token/` (authorization code with PKCE, refresh with rotation, client
//! credentials), `/o/revoke_token/` (RFC 7009), `/o/introspect/` (RFC 7662)
//! and the server metadata (RFC 8414). Clients authenticate with HTTP Basic
//! or with `client_id`/`client_secret` in the form (RFC 6749 §2.3.1);
//! refused client authentications count against the caller's `credentials`
//! rate-limit bucket, as failed API keys do.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use domain::Error;
use domain::oauth::tokens::{self, Issued};
use domain::oauth::{App, ErrorCode, OAuthFailure, Scope, Scopes, apps};
use serde_json::{Value, json};

use crate::chat::{PeerAddr, client_ip};
use crate::routes::Routes;
use crate::url::BaseUrl;
use crate::{ApiError, AppState};

pub fn router(state: &AppState) -> Routes {
    Routes::new()
        .route("/o/token/", post(token))
        .route("/o/revoke_token/", post(revoke))
        .route("/o/introspect/", post(introspect))
        .map(|r| r.layer(axum::middleware::from_fn_with_state(state.clone(), guard)))
        .route("/.well-known/oauth-authorization-server", get(metadata))
}

fn refused(code: ErrorCode, description: &str) -> ApiError {
    ApiError::Domain(Error::OAuth(OAuthFailure::new(code, description)))
}

/// The form of a token-endpoint request. A parameter sent twice is refused
/// (RFC 6749 §3.2).
struct Form(HashMap<String, String>);

impl Form {
    fn read(headers: &HeaderMap, body: &Bytes) -> Result<Self, ApiError> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type && !body.is_empty() {
            return Err(refused(
                ErrorCode::InvalidRequest,
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(refused(
                    ErrorCode::InvalidRequest,
                    &format!("parameter {k} was sent more than once"),
                ));
            }
        }
        Ok(Form(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| refused(ErrorCode::InvalidRequest, &format!("{name} is required")))
    }
}

/// The client's id and secret from HTTP Basic (form-urlencoded inside, RFC
/// 6749 §2.3.1) or from the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<(String, Option<String>), ApiError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    if let Some((_, encoded)) = basic {
        let bad = || refused(ErrorCode::InvalidClient, "malformed HTTP Basic credentials");
        let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let unescape = |s: &str| {
            form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        return Ok((unescape(id), Some(unescape(secret))));
    }
    let id = form.get("client_id").ok_or_else(|| {
        refused(
            ErrorCode::InvalidClient,
            "client authentication is required",
        )
    })?;
    Ok((
        id.to_string(),
        form.get("client_secret").map(str::to_string),
    ))
}

/// The client a request to the token, revocation or introspection endpoint
/// authenticated as, with the request's form.
struct Client {
    app: App,
    form: Form,
}

impl FromRequest<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| refused(ErrorCode::InvalidRequest, "the body could not be read"))?;
        let form = Form::read(&headers, &body)?;
        let (id, secret) = client_credentials(&headers, &form)?;
        let app = apps::authenticate(&state.domain, &id, secret.as_deref()).await?;
        Ok(Client { app, form })
    }
}

/// Around the client-authenticating endpoints: the client address's
/// `credentials` bucket (refused client authentications count against it),
/// and no caching of what they answer (RFC 6749 §5.1).
async fn guard(
    State(state): State<AppState>,
    peer: PeerAddr,
    req: Request,
    next: Next,
) -> Response {
    let bucket = format!("credentials:{}", client_ip(peer.0));
    let over = state.chat_limits.peek(&bucket);
    if !over.allowed {
        return over.refusal();
    }
    let mut r = next.run(req).await;
    if r.status() == StatusCode::UNAUTHORIZED {
        state.chat_limits.check(&bucket);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn issued(i: Issued) -> Response {
    let mut body = json!({
        "access_token": i.access_token,
        "token_type": "Bearer",
        "expires_in": i.expires_in,
        "scope": i.scope.to_string(),
    });
    if let Some(r) = i.refresh_token {
        body["refresh_token"] = Value::from(r);
    }
    Json(body).into_response()
}

fn scope_param(form: &Form) -> Result<Option<Scopes>, ApiError> {
    form.get("scope")
        .map(Scopes::parse)
        .transpose()
        .map_err(|f| ApiError::Domain(Error::OAuth(f)))
}

async fn token(
    State(state): State<AppState>,
    Client { app, form }: Client,
) -> Result<Response, ApiError> {
    let d = &state.domain;
    let out = match form.required("grant_type")? {
        "authorization_code" => {
            tokens::exchange_code(
                d,
                &app,
                form.required("code")?,
                form.get("redirect_uri"),
                form.get("code_verifier"),
            )
            .await?
        }
        "refresh_token" => {
            tokens::refresh(
                d,
                &app,
                form.required("refresh_token")?,
                scope_param(&form)?,
            )
            .await?
        }
        "client_credentials" => tokens::client_credentials(d, &app, scope_param(&form)?).await?,
        other => {
            return Err(refused(
                ErrorCode::UnsupportedGrantType,
                &format!("grant_type {other:?} is not supported"),
            ));
        }
    };
    Ok(issued(out))
}

async fn revoke(
    State(state): State<AppState>,
    Client { app, form }: Client,
) -> Result<Response, ApiError> {
    tokens::revoke(&state.domain, &app, form.required("token")?).await?;
    Ok(StatusCode::OK.into_response())
}

async fn introspect(
    State(state): State<AppState>,
    Client { app, form }: Client,
) -> Result<Response, ApiError> {
    // Only a client that can prove who it is learns about tokens.
    if !app.confidential {
        return Err(refused(
            ErrorCode::InvalidClient,
            "introspection needs a confidential client",
        ));
    }
    let token = form.required("token")?;
    let body = match tokens::introspect(&state.domain.db.read, &app, token).await? {
        None => json!({"active": false}),
        Some(t) => {
            let mut b = json!({
                "active": true,
                "scope": t.scope.to_string(),
                "client_id": t.client_id,
                "token_type": match t.kind {
                    tokens::TokenKind::Access => "access_token",
                    tokens::TokenKind::Refresh => "refresh_token",
                },
                "iat": t.issued_at.timestamp(),
                "exp": t.expires_at.timestamp(),
                "team": t.team_slug,
            });
            if let Some(u) = t.username {
                b["username"] = Value::from(u.clone());
                b["sub"] = Value::from(u);
            }
            b
        }
    };
    Ok(Json(body).into_response())
}

/// RFC 8414 authorization server metadata.
async fn metadata(base: BaseUrl) -> Json<Value> {
    Json(json!({
        "issuer": base.origin,
        "authorization_endpoint": base.absolute("/o/authorize/"),
        "token_endpoint": base.absolute("/o/token/"),
        "revocation_endpoint": base.absolute("/o/revoke_token/"),
        "introspection_endpoint": base.absolute("/o/introspect/"),
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}
