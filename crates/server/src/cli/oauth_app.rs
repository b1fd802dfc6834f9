//! `chatstudio oauth-app`: a team's OAuth2 applications. `create` prints the
//! client id and secret alone on its last line (the secret is stored as a
//! hash, so this is the only time it is seen); `list` never shows secrets.

use clap::{Subcommand, ValueEnum};
use domain::oauth::{App, AppKind, NewApp};
use serde_json::json;
use uuid::Uuid;

use super::Cli;
use crate::output;

/// The kinds as people type them; the stored names are the grant types.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Acts for a person who consents (authorization code, PKCE).
    User,
    /// A server of yours (client credentials, `chat:start` only).
    Machine,
}

#[derive(Debug, Subcommand)]
pub enum OauthAppCmd {
    /// Register an application; the last line is `<client_id> <client_secret>`
    /// (`-` for a public client's secret), shown once.
    Create {
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// Where people are sent back after consenting (exact match;
        /// https, or http for localhost). Repeatable; user apps need one.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A chatbot a machine application may start chats with
        /// (repeatable; none listed, none allowed).
        #[arg(long = "chatbot")]
        chatbots: Vec<Uuid>,
        /// A client that cannot keep a secret (a browser or mobile app):
        /// no secret is issued and PKCE is always required.
        #[arg(long)]
        public: bool,
        /// Do not require PKCE from a confidential user-facing application.
        #[arg(long)]
        no_pkce: bool,
    },
    /// A team's applications (client ids, never secrets).
    List {
        #[arg(long)]
        team: String,
    },
    /// Remove an application; every token it was given stops working.
    Remove {
        #[arg(long)]
        team: String,
        client_id: String,
    },
}

fn kind_name(k: AppKind) -> &'static str {
    match k {
        AppKind::User => "user",
        AppKind::Machine => "machine",
    }
}

fn client_type(a: &App) -> &'static str {
    if a.confidential {
        "confidential"
    } else {
        "public"
    }
}

/// A list cell: the items comma-separated, or `-` when there are none.
fn joined<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub async fn run(cli: &Cli, cmd: &OauthAppCmd) -> anyhow::Result<()> {
    // The applications' services take the whole domain (they are shared
    // with the API), so open it as the server does.
    let d = crate::serve::open_domain(&cli.storage.db_config(), cli.storage.files_url.as_deref())
        .await?;
    let r = manage(cli, &d, cmd).await;
    d.db.close().await;
    r
}

async fn manage(cli: &Cli, d: &domain::Domain, cmd: &OauthAppCmd) -> anyhow::Result<()> {
    match cmd {
        OauthAppCmd::Create {
            team,
            name,
            kind,
            redirect_uris,
            chatbots,
            public,
            no_pkce,
        } => {
            let t = domain::teams::by_slug(&d.db.read, team).await?;
            // The domain's "not found" would not say which id; each is
            // checked first so the message names it.
            for id in chatbots {
                domain::chatbots::find_row(&d.db.read, t.id, *id)
                    .await
                    .map_err(|_| anyhow::anyhow!("no chatbot {id} in team {}", t.slug))?;
            }
            let new = NewApp {
                name: name.clone(),
                kind: match kind {
                    Kind::User => AppKind::User,
                    Kind::Machine => AppKind::Machine,
                },
                public: *public,
                redirect_uris: redirect_uris.clone(),
                chatbots: chatbots.clone(),
                pkce_required: !*no_pkce,
            };
            let (app, secret) = domain::oauth::apps::create(d, t.id, None, new).await?;
            if cli.json {
                output::json(&json!({"app": app, "client_secret": secret}));
            } else {
                output::line(&format!(
                    "created {} application {:?} ({}) for team {}",
                    kind_name(app.kind),
                    app.name,
                    client_type(&app),
                    t.slug
                ));
                match &secret {
                    Some(_) => output::line("client id and client secret (shown once):"),
                    None => output::line("client id (a public client has no secret):"),
                }
                output::line(&format!(
                    "{} {}",
                    app.client_id,
                    secret.as_deref().unwrap_or("-")
                ));
            }
        }
        OauthAppCmd::List { team } => {
            let t = domain::teams::by_slug(&d.db.read, team).await?;
            let apps = domain::oauth::apps::list(&d.db.read, t.id).await?;
            output::rows(cli.json, &apps, |a| {
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    a.client_id,
                    a.name,
                    kind_name(a.kind),
                    client_type(a),
                    joined(&a.redirect_uris),
                    joined(&a.allowed_chatbots)
                )
            });
        }
        OauthAppCmd::Remove { team, client_id } => {
            let t = domain::teams::by_slug(&d.db.read, team).await?;
            let app = domain::oauth::apps::remove(d, t.id, client_id.trim()).await?;
            if cli.json {
                output::json(&json!({"client_id": app.client_id, "removed": true}));
            } else {
                output::line(&format!(
                    "removed application {:?} ({}); its tokens no longer work",
                    app.name, app.client_id
                ));
            }
        }
    }
    Ok(())
}
