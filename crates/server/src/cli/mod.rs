//! The command line: `serve`, `migrate`, and the admin commands. Every admin
//! command takes `--json` for machine output and exits non-zero with a
//! one-line `error: …` on failure.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::config::StorageArgs;

mod action;
mod channel;
mod chatbot;
mod chatbot_import;
mod chatbot_test;
mod events;
mod key;
mod messaging;
mod oauth_app;
mod pricing;
mod provider;
mod team;
mod user;

// `--team SLUG`: a command over all of a team's items of one kind.
#[derive(Debug, Args)]
pub struct TeamArg {
    #[arg(long)]
    pub team: String,
}

// `--team SLUG --name NAME`: one of a team's named items.
#[derive(Debug, Args)]
pub struct TeamItem {
    #[arg(long)]
    pub team: String,
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Parser)]
#[command(
    name = "chatstudio",
    version,
    about = "Build, deploy and monitor chatbots."
)]
pub struct Cli {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log format on stderr.
    #[arg(long, env = "CHATSTUDIO_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text", global = true)]
    pub log_format: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "CHATSTUDIO_BIND", default_value = "127.0.0.1:8000")]
        bind: SocketAddr,
        /// Timeout of one LLM provider call, in seconds (a provider's own setting wins).
        #[arg(long, env = "CHATSTUDIO_PROVIDER_TIMEOUT", default_value_t = 120)]
        provider_timeout: u64,
        /// Retries of a provider call after a retryable failure (429, 5xx, timeout).
        #[arg(long, env = "CHATSTUDIO_PROVIDER_RETRIES", default_value_t = 3)]
        provider_retries: u32,
        /// Job workers in this process (0 leaves jobs to `chatstudio worker` processes).
        #[arg(long, env = "CHATSTUDIO_WORKERS", default_value_t = 2)]
        workers: usize,
        /// Chat API rate limit per session, channel or client IP (`<count>/<n><s|m|h>`).
        #[arg(long, env = "CHATSTUDIO_CHAT_RATE_LIMIT", default_value = "600/5m", value_parser = parse_rate)]
        chat_rate_limit: api::ratelimit::Rate,
        /// Only count and report rate limits (headers), never refuse.
        #[arg(long, env = "CHATSTUDIO_RATE_LIMIT_LOG_ONLY")]
        rate_limit_log_only: bool,
        /// The server's public origin (`https://chat.example.org`): every
        /// absolute URL in a response uses it instead of the request's Host.
        #[arg(long, env = "CHATSTUDIO_PUBLIC_URL")]
        public_url: Option<String>,
        /// Seconds a client has to send a request's head (and, on a kept-alive
        /// connection, the next one) before the connection is closed.
        #[arg(long, env = "CHATSTUDIO_HEADER_TIMEOUT", default_value_t = 20)]
        header_timeout: u64,
        /// Seconds of grace for a request body; after it, bodies must average
        /// at least 1 KiB/s or fail.
        #[arg(long, env = "CHATSTUDIO_BODY_TIMEOUT", default_value_t = 10)]
        body_timeout: u64,
        /// Connections served at once (more wait in the listen backlog).
        /// [default: half the open-files limit, which the server raises to
        /// its hard maximum at start]
        #[arg(long, env = "CHATSTUDIO_MAX_CONNECTIONS")]
        max_connections: Option<usize>,
        /// MiB uploaded through one widget channel per window (`<MiB>/<n><s|m|h>`).
        #[arg(long, env = "CHATSTUDIO_UPLOAD_QUOTA_CHANNEL", default_value = "2048/1h", value_parser = parse_rate)]
        upload_quota_channel: api::ratelimit::Rate,
        /// MiB uploaded by one client address per window.
        #[arg(long, env = "CHATSTUDIO_UPLOAD_QUOTA_CLIENT", default_value = "500/1h", value_parser = parse_rate)]
        upload_quota_client: api::ratelimit::Rate,
    },
    /// Run job workers only (scale out: any number of these on one PostgreSQL database).
    Worker {
        #[arg(long, env = "CHATSTUDIO_WORKERS", default_value_t = 2)]
        workers: usize,
        /// The server's public base URL, for links to files a channel cannot carry.
        #[arg(long, env = "CHATSTUDIO_PUBLIC_URL")]
        public_url: Option<String>,
        /// Timeout of one LLM provider call, in seconds.
        #[arg(long, env = "CHATSTUDIO_PROVIDER_TIMEOUT", default_value_t = 120)]
        provider_timeout: u64,
        #[arg(long, env = "CHATSTUDIO_PROVIDER_RETRIES", default_value_t = 3)]
        provider_retries: u32,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage teams.
    #[command(subcommand)]
    Team(team::TeamCmd),
    /// Manage API keys.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Manage the people who sign in to the console, and their roles.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Manage chatbots and their versions.
    #[command(subcommand)]
    Chatbot(chatbot::ChatbotCmd),
    /// Manage a team's LLM providers.
    #[command(subcommand)]
    Provider(provider::ProviderCmd),
    /// Manage a team's custom actions (its HTTP APIs as LLM tools).
    #[command(subcommand)]
    Action(action::ActionCmd),
    /// Manage a chatbot's channels (the chat widget).
    #[command(subcommand)]
    Channel(channel::ChannelCmd),
    /// Manage a team's OAuth2 applications (client ids and secrets).
    #[command(subcommand)]
    OauthApp(oauth_app::OauthAppCmd),

    /// Messaging providers: a team's WhatsApp credentials (Meta, Twilio, Turn).
    #[command(subcommand)]
    Messaging(messaging::MessagingCmd),
    /// Event triggers: the log of their firings.
    #[command(subcommand)]
    Events(events::EventsCmd),
    /// Enqueue `count` no-op jobs (checks that workers run).
    #[command(hide = true)]
    PingJobs {
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Team price overrides (per 1K tokens as stored; set per 1M as published).
    #[command(subcommand)]
    Pricing(pricing::PricingCmd),
}

fn parse_rate(s: &str) -> Result<api::ratelimit::Rate, String> {
    api::ratelimit::Rate::parse(s).ok_or_else(|| format!("invalid rate {s:?}: use e.g. 600/5m"))
}

/// Opens and migrates the database for an admin command.
async fn open(cli: &Cli) -> anyhow::Result<store::Db> {
    let cfg = cli.storage.db_config();
    let db = store::connect(&cfg).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot open the database ({}): {e}",
            crate::serve::describe(&cfg)
        )
    })?;
    db.migrate()
        .await
        .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
    Ok(db)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Worker {
            workers,
            public_url,
            provider_timeout,
            provider_retries,
        } => {
            let settings = engine::EngineSettings {
                provider_timeout: std::time::Duration::from_secs((*provider_timeout).max(1)),
                max_retries: *provider_retries,
                telegram_api_url: cli.storage.telegram_api_url.clone(),
                meta_api_url: cli.storage.meta_api_url.clone(),
                twilio_api_url: cli.storage.twilio_api_url.clone(),
                turn_api_url: cli.storage.turn_api_url.clone(),
                smtp: cli.storage.smtp(),
                outbound: cli.storage.outbound(),
                code: cli.storage.code(),
                timeout_scan: std::time::Duration::from_secs(
                    cli.storage.timeout_scan_interval.max(1),
                ),
                public_url: public_url.clone(),
                ..Default::default()
            };
            crate::serve::run_workers(
                &cli.storage.db_config(),
                cli.storage.files_url.as_deref(),
                settings,
                *workers,
            )
            .await
        }
        Command::PingJobs { count } => {
            let db = open(&cli).await?;
            for _ in 0..*count {
                domain::jobs::enqueue(
                    &db.write,
                    domain::jobs::NewJob::<domain::jobs::Ping>::new(serde_json::json!({})),
                )
                .await?;
            }
            db.close().await;
            crate::output::line(&format!("enqueued {count} ping jobs"));
            Ok(())
        }
        Command::Serve {
            bind,
            provider_timeout,
            provider_retries,
            workers,
            chat_rate_limit,
            rate_limit_log_only,
            public_url,
            header_timeout,
            body_timeout,
            max_connections,
            upload_quota_channel,
            upload_quota_client,
        } => {
            let opts = crate::serve::Options {
                db: cli.storage.db_config(),
                bind: *bind,
                seed_demo: true,
                engine: engine::EngineSettings {
                    provider_timeout: std::time::Duration::from_secs((*provider_timeout).max(1)),
                    max_retries: *provider_retries,
                    telegram_api_url: cli.storage.telegram_api_url.clone(),
                    meta_api_url: cli.storage.meta_api_url.clone(),
                    twilio_api_url: cli.storage.twilio_api_url.clone(),
                    turn_api_url: cli.storage.turn_api_url.clone(),
                    smtp: cli.storage.smtp(),
                    outbound: cli.storage.outbound(),
                    code: cli.storage.code(),
                    timeout_scan: std::time::Duration::from_secs(
                        cli.storage.timeout_scan_interval.max(1),
                    ),
                    ..Default::default()
                },
                files_url: cli.storage.files_url.clone(),
                workers: *workers,
                chat_rate: *chat_rate_limit,
                enforce_rate_limits: !*rate_limit_log_only,
                scheduler: true,
                public_url: public_url.clone(),
                http: crate::http::Limits {
                    header_timeout: std::time::Duration::from_secs((*header_timeout).max(1)),
                    body_timeout: std::time::Duration::from_secs((*body_timeout).max(1)),
                    max_connections: {
                        let files = crate::http::raise_open_files();
                        max_connections
                            .unwrap_or_else(|| crate::http::auto_max_connections(files))
                            .max(1)
                    },
                },
                upload_quota_channel: *upload_quota_channel,
                upload_quota_client: *upload_quota_client,
            };
            serve(opts).await
        }
        // A dry run opens the whole domain (secrets, files) itself.
        Command::Chatbot(chatbot::ChatbotCmd::Test(a)) => chatbot_test::run(&cli, a).await,
        // So do OAuth applications (their services take the domain).
        Command::OauthApp(cmd) => oauth_app::run(&cli, cmd).await,
        Command::Team(_)
        | Command::Key(_)
        | Command::User(_)
        | Command::Chatbot(_)
        | Command::Provider(_)
        | Command::Action(_)
        | Command::Pricing(_)
        | Command::Events(_)
        | Command::Channel(_)
        | Command::Messaging(_) => {
            let db = open(&cli).await?;
            let r = manage(&cli, &db).await;
            db.close().await;
            r
        }
        Command::Migrate => {
            let db = open(&cli).await?;
            db.close().await;
            if cli.json {
                crate::output::json(&serde_json::json!({"migrated": true}));
            } else {
                crate::output::line("database is up to date");
            }
            Ok(())
        }
    }
}

/// The resource commands, against an open database the caller closes.
async fn manage(cli: &Cli, db: &store::Db) -> anyhow::Result<()> {
    match &cli.command {
        Command::Team(cmd) => team::run(cli, db, cmd).await,
        Command::Key(cmd) => key::run(cli, db, cmd).await,
        Command::User(cmd) => user::run(cli, db, cmd).await,
        Command::Chatbot(cmd) => chatbot::run(cli, db, cmd).await,
        Command::Provider(cmd) => provider::run(cli, db, cmd).await,
        Command::Action(cmd) => action::run(cli, db, cmd).await,
        Command::Pricing(cmd) => pricing::run(cli, db, cmd).await,
        Command::Channel(cmd) => channel::run(cli, db, cmd).await,
        Command::Messaging(cmd) => messaging::run(cli, db, cmd).await,
        Command::Events(cmd) => events::run(cli, db, cmd).await,
        _ => anyhow::bail!("not a resource command"),
    }
}

async fn serve(opts: crate::serve::Options) -> anyhow::Result<()> {
    let running = crate::serve::start(&opts).await?;
    if let Some(seed) = &running.seed {
        crate::output::line(&crate::serve::first_start_banner(seed, running.addr));
    }
    crate::output::line(&format!("chatstudio listening on http://{}", running.addr));
    crate::serve::shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    let domain = running.domain.clone();
    running.shutdown().await?;
    domain.db.close().await;
    Ok(())
}
