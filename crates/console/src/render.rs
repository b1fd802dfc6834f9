//! Templates, compiled into the binary and parsed once: one per page, each
//! extending `base.html`. Autoescaping is on for every `.html` template.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};

use crate::error::PageError;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("chatbots.html", include_str!("../templates/chatbots.html")),
    ("chatbot.html", include_str!("../templates/chatbot.html")),
    ("sessions.html", include_str!("../templates/sessions.html")),
    ("session.html", include_str!("../templates/session.html")),
    ("team.html", include_str!("../templates/team.html")),
    ("try.html", include_str!("../templates/try.html")),
    ("edit.html", include_str!("../templates/edit.html")),
    ("compare.html", include_str!("../templates/compare.html")),
    ("channels.html", include_str!("../templates/channels.html")),
    (
        "participants.html",
        include_str!("../templates/participants.html"),
    ),
    (
        "participant.html",
        include_str!("../templates/participant.html"),
    ),
    ("usage.html", include_str!("../templates/usage.html")),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            // A template that does not parse is caught by the page tests.
            tracing::error!(template = name, error = %e, "console template does not parse");
        }
    }
    env
});

/// Renders a page with a status.
pub fn page_with(status: StatusCode, name: &str, ctx: Value) -> Result<Response, PageError> {
    let html = ENV
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| {
            PageError::Internal(domain::Error::internal(format!("rendering {name}: {e:#}")))
        })?;
    Ok((status, Html(html)).into_response())
}

pub fn page(name: &str, ctx: Value) -> Result<Response, PageError> {
    page_with(StatusCode::OK, name, ctx)
}

/// The error page; plain text should even it fail to render.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    page_with(
        status,
        "error.html",
        context! { title => title, message => message, status => status.as_u16() },
    )
    .unwrap_or_else(|_| (status, message.to_string()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            assert!(env.add_template(name, source).is_ok(), "{name}");
        }
    }
}
