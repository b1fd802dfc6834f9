//! The console: server-rendered pages to build, deploy and monitor chatbots,
//! for the people of a team. Pages live under `/a/{team}/…` (the original's
//! URLs); each names the permission it needs, and a signed-out visitor is
//! sent to `/login/`. Templates and the stylesheet are compiled into the
//! binary; pages work without JavaScript.

mod assets;
mod authorize;
mod channels;
mod chart;
mod chatbots;
mod compare;
pub mod diff;
mod editor;
mod error;
mod export;
pub mod graph;
mod login;
mod member;
mod oauth_apps;
mod participants;
mod providers;
mod render;
mod sessions;
mod team;
mod templates;
mod usage;

use std::sync::Arc;

use api::ratelimit::{Rate, RateLimiter};
use api::{AppState, Routes};
use axum::Extension;
use axum::routing::{get, post};

pub use error::PageError;

/// Failed sign-ins allowed per client address, and per email, in a window.
pub const LOGIN_FAILURES: Rate = Rate {
    limit: 10,
    window_secs: 15 * 60,
};

/// What every console handler shares beside the API's state.
pub struct Console {
    /// Counts failed sign-ins (by client address and by email).
    login_failures: RateLimiter,
    /// Mark cookies `Secure` whatever the request says (the public URL is https).
    always_secure: bool,
}

/// The console's routes, to merge beside the API's.
pub fn routes(state: &AppState) -> Routes {
    let console = Arc::new(Console {
        login_failures: RateLimiter::new(LOGIN_FAILURES, true),
        always_secure: state
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
    });
    Routes::new()
        .route("/", get(login::home))
        .route("/login/", get(login::form).post(login::submit))
        .route("/logout/", post(login::logout))
        .route("/static/{name}", get(assets::asset))
        .route(
            "/o/authorize/",
            get(authorize::form).post(authorize::decide),
        )
        .route("/a/{team}/", get(chatbots::team_home))
        .route("/a/{team}/chatbots/", get(chatbots::list))
        .route("/a/{team}/chatbots/new/", post(chatbots::create))
        .route("/a/{team}/chatbots/{id}/", get(chatbots::show))
        .route("/a/{team}/chatbots/{id}/try/", get(chatbots::try_it))
        .route("/a/{team}/chatbots/{id}/compare/", get(compare::show))
        .route("/a/{team}/chatbots/{id}/channels/", get(channels::list))
        .route(
            "/a/{team}/chatbots/{id}/channels/widget/",
            post(channels::add_widget),
        )
        .route(
            "/a/{team}/chatbots/{id}/channels/telegram/",
            post(channels::add_telegram),
        )
        .route(
            "/a/{team}/chatbots/{id}/channels/whatsapp/",
            post(channels::add_whatsapp),
        )
        .route(
            "/a/{team}/chatbots/{id}/channels/{channel}/{action}/",
            post(channels::act),
        )
        .route(
            "/a/{team}/chatbots/{id}/edit/",
            get(editor::form).post(editor::save),
        )
        .route(
            "/a/{team}/chatbots/{id}/versions/{number}/restore/",
            post(editor::restore),
        )
        .route(
            "/a/{team}/chatbots/{id}/versions/",
            post(chatbots::new_version),
        )
        .route("/a/{team}/sessions/", get(sessions::list))
        .route("/a/{team}/sessions/export.csv", get(export::messages))
        .route("/a/{team}/sessions/{id}/", get(sessions::show))
        .route("/a/{team}/sessions/{id}/end/", post(sessions::end))
        .route(
            "/a/{team}/sessions/{id}/tags/{action}/",
            post(sessions::tag),
        )
        .route("/a/{team}/participants/", get(participants::list))
        .route(
            "/a/{team}/participants/export.csv",
            get(export::participants),
        )
        .route("/a/{team}/participants/{id}/", get(participants::show))
        .route(
            "/a/{team}/participants/{id}/data/{chatbot}/",
            post(participants::set_data),
        )
        .route("/a/{team}/usage/", get(usage::show))
        .route("/a/{team}/team/", get(team::show))
        .route("/a/{team}/team/providers/", post(providers::add))
        .route(
            "/a/{team}/team/providers/{name}/remove/",
            post(providers::remove),
        )
        .route(
            "/a/{team}/team/providers/{name}/test/",
            post(providers::test),
        )
        .route("/a/{team}/team/prices/", post(providers::set_price))
        .route("/a/{team}/team/keys/", post(team::create_key))
        .route(
            "/a/{team}/team/keys/{prefix}/revoke/",
            post(team::revoke_key),
        )
        .route(
            "/a/{team}/team/oauth-apps/",
            get(oauth_apps::list).post(oauth_apps::create),
        )
        .route(
            "/a/{team}/team/oauth-apps/{client_id}/remove/",
            post(oauth_apps::remove),
        )
        .route("/a/{team}/team/members/", post(team::add_member))
        .route("/a/{team}/team/members/{user}/role/", post(team::set_role))
        .route(
            "/a/{team}/team/members/{user}/remove/",
            post(team::remove_member),
        )
        .map(|r| r.layer(Extension(console)))
}
