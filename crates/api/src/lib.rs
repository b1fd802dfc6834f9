//! The HTTP API: handlers per contract tag, request/response views, the
//! authentication and routing layers, and the OpenAPI document.

pub mod auth;
pub mod body;
pub mod channels_api;
pub mod chat;
pub mod error;
pub mod experiments;
pub mod files;
pub mod health;
mod inbound;
pub mod input;
mod nul;
pub mod oauth;
pub mod openai;
pub mod openapi;
mod overflow;
pub mod pagination;
pub mod participants;
pub mod ratelimit;
pub mod routes;
pub mod routing;
pub mod sessions;
pub mod telegram;
pub mod traces;
pub mod trigger;
pub mod turns;
pub mod url;
pub mod views;
pub mod whatsapp;

use domain::Domain;

pub use error::ApiError;
pub use routes::Routes;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub domain: Domain,
    pub engine: engine::Engine,
    pub requests: health::RequestCounter,
    pub chat_limits: ratelimit::RateLimiter,
    pub upload_quota: ratelimit::UploadQuota,
    /// `scheme://host[:port]` every absolute URL in a body starts with; none:
    /// the request's Host (checked to be a host name or address).
    pub public_url: Option<std::sync::Arc<str>>,
}

/// Every route: the public ones and, behind authentication, the rest.
pub fn routes(state: &AppState) -> Routes {
    use domain::oauth::Scope::*;
    let protected = Routes::new()
        .merge(auth::scoped(
            experiments::router(),
            ChatbotsRead,
            ChatbotsRead,
        ))
        .merge(auth::scoped(
            channels_api::router(),
            ChatbotsInteract,
            ChatbotsInteract,
        ))
        .merge(auth::scoped(
            openai::router(),
            ChatbotsInteract,
            ChatbotsInteract,
        ))
        .merge(auth::scoped(
            sessions::router(),
            SessionsRead,
            SessionsWrite,
        ))
        .merge(auth::scoped(traces::router(), SessionsRead, SessionsWrite))
        .merge(auth::scoped(
            participants::router(),
            ParticipantsRead,
            ParticipantsWrite,
        ))
        .merge(auth::scoped(files::router(), FilesRead, FilesRead))
        .merge(auth::scoped(
            trigger::router(),
            ChatbotsInteract,
            ChatbotsInteract,
        ))
        .map(|r| {
            r.layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_auth,
            ))
        });
    // The chat API authenticates itself (embed keys, session tokens, API keys).
    Routes::new()
        .merge(chat::router())
        .merge(telegram::router())
        .merge(whatsapp::router())
        .merge(files::shared_router())
        .merge(health::router())
        .merge(openapi::router())
        .merge(oauth::router(state))
        .merge(protected)
}

/// The whole application: the routes, and the routing layer (trailing
/// slashes derived from the routes, `/api/v1` alias, 405 bodies) around them.
pub fn app(state: AppState) -> routing::App {
    app_with(state, Routes::new())
}

/// The application with more routes beside the API's (the console's), under
/// the same routing layer.
pub fn app_with(state: AppState, extra: Routes) -> routing::App {
    let (router, paths) = routes(&state).merge(extra).into_parts();
    let counter = state.requests.clone();
    let router = router
        .fallback(routing::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(nul::refuse_in_uri))
        .layer(axum::middleware::from_fn(overflow::drain_refused))
        .layer(axum::middleware::from_fn_with_state(
            counter,
            health::count_requests,
        ));
    routing::new_app(router, routing::SlashRules::new(&paths))
}
