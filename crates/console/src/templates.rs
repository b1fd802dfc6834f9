//! The templates, compiled into the binary and parsed once: one per page,
//! each extending `base.html`. Autoescaping is on for every `.html` template.

use std::sync::LazyLock;

use minijinja::{Environment, Value};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("pages.html", include_str!("../templates/pages.html")),
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
    (
        "authorize.html",
        include_str!("../templates/authorize.html"),
    ),
    (
        "oauth_apps.html",
        include_str!("../templates/oauth_apps.html"),
    ),
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

/// A template rendered with its context.
pub fn render(name: &str, ctx: Value) -> Result<String, minijinja::Error> {
    ENV.get_template(name).and_then(|t| t.render(ctx))
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
