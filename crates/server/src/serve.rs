//! `chatstudio serve`: migrate, seed the demo team on an empty database, bind,
//! and serve until SIGINT/SIGTERM, then drain in-flight requests.

use std::net::SocketAddr;

use anyhow::Context;
use domain::Domain;
use domain::bootstrap::{self, DemoSeed};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (uploads have their own, larger limit).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

pub struct Running {
    pub addr: SocketAddr,
    pub seed: Option<DemoSeed>,
    pub domain: Domain,
    pub engine: engine::Engine,
    shutdown: Option<oneshot::Sender<()>>,
    join: JoinHandle<std::io::Result<()>>,
    background: Background,
}

/// How often a process looks for due schedules.
pub const SCHEDULER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Workers and housekeeping that stop with the server.
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    pub fn start(
        engine: &engine::Engine,
        workers: usize,
        listen_url: Option<String>,
        scheduler: bool,
    ) -> Self {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        if workers > 0 {
            let cfg = engine::worker::WorkerConfig {
                count: workers,
                listen_url,
                ..Default::default()
            };
            tasks.extend(engine::worker::spawn(engine.clone(), cfg, rx.clone()));
        }
        // The scheduler: every process ticks; claims keep firings unique across processes.
        let sched_domain = engine.domain.clone();
        let mut sched_rx = rx.clone();
        if scheduler {
            tasks.push(tokio::spawn(async move {
                loop {
                    match domain::schedules::tick(&sched_domain.db, store::now(), 100).await {
                        Ok(n) => sched_domain.wake_workers(n),
                        Err(e) => tracing::warn!(error = %e, "scheduler tick failed"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(SCHEDULER_INTERVAL) => {}
                        _ = sched_rx.changed() => return,
                    }
                }
            }));
        }
        // Timeout triggers: every process with the scheduler scans; a compare
        // on each timer keeps a firing to one process.
        if scheduler {
            let domain = engine.domain.clone();
            let every = engine.settings.timeout_scan;
            let mut rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match domain::timeouts::tick(&domain, store::now()).await {
                        Ok(n) => domain.wake_workers(n),
                        Err(e) => tracing::warn!(error = %e, "timeout scan failed"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = rx.changed() => return,
                    }
                }
            }));
        }
        // Housekeeping every 10 minutes: expired uploads; hourly (where the
        // scheduler runs), custom actions' health paths, as the original does.
        let housekeeping = engine.clone();
        let mut rx2 = rx;
        tasks.push(tokio::spawn(async move {
            let mut ticks: u64 = 0;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {
                        let domain = &housekeeping.domain;
                        if let Err(e) = domain::files::uploads::expire_uploads(domain).await {
                            tracing::warn!(error = %e, "expiring uploads failed");
                        }
                        if let Err(e) = domain::signins::sweep_expired(domain).await {
                            tracing::warn!(error = %e, "removing expired console sign-ins failed");
                        }
                        ticks += 1;
                        if scheduler && ticks.is_multiple_of(6)
                            && let Err(e) = engine::tools::actions::check_health(&housekeeping, 200).await
                        {
                            tracing::warn!(error = %e, "custom action health checks failed");
                        }
                    }
                    _ = rx2.changed() => return,
                }
            }
        }));
        Self { stop, tasks }
    }

    /// Signals every task and waits for running jobs to finish (bounded).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let all = futures_join(self.tasks);
        if tokio::time::timeout(std::time::Duration::from_secs(30), all)
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop within 30 s");
        }
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

impl Running {
    /// Stops accepting connections, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join.await.context("server task")??;
        self.background.stop().await;
        Ok(())
    }
}

/// Opens the database, migrates, seeds on first start and starts serving on
/// `bind` (port 0 picks a free port; `Running::addr` says which).
/// How to start: storage, address, whether to seed the demo team, and the
/// engine's provider-call settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub db: store::DbConfig,
    pub bind: SocketAddr,
    pub seed_demo: bool,
    pub engine: engine::EngineSettings,
    pub files_url: Option<String>,
    /// Job workers in this process (0: only separate `chatstudio worker` processes run jobs).
    pub workers: usize,
    /// Chat API rate limit per session, channel or client IP, e.g. `600/5m`.
    pub chat_rate: api::ratelimit::Rate,
    pub enforce_rate_limits: bool,
    /// Tick the scheduler in this process (tests drive it by hand instead).
    pub scheduler: bool,
    /// The origin every absolute URL in a body uses (none: the request's Host).
    pub public_url: Option<String>,
    /// Timeouts and the connection cap of the HTTP server.
    pub http: crate::http::Limits,
    /// MiB uploaded per widget channel, and per client, per window.
    pub upload_quota_channel: api::ratelimit::Rate,
    pub upload_quota_client: api::ratelimit::Rate,
}

/// The database (migrated), the credential key and the file store, as every
/// process that works on the data opens them.
pub async fn open_domain(
    db_cfg: &store::DbConfig,
    files_url: Option<&str>,
) -> anyhow::Result<Domain> {
    let db = store::connect(db_cfg)
        .await
        .with_context(|| format!("cannot open the database ({})", describe(db_cfg)))?;
    db.migrate().await.context("database migration failed")?;
    let secrets = domain::secrets::SecretBox::load(&db_cfg.data_dir)
        .map_err(|e| anyhow::anyhow!("secret key: {e}"))?;
    let files = domain::files::FileStore::open(files_url, &db_cfg.data_dir)
        .map_err(|e| anyhow::anyhow!("file store: {e}"))?;
    Domain::open(db, secrets, files)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn start(opts: &Options) -> anyhow::Result<Running> {
    let (db_cfg, bind, seed_demo) = (&opts.db, opts.bind, opts.seed_demo);
    let domain = open_domain(db_cfg, opts.files_url.as_deref()).await?;
    let seed = if seed_demo {
        bootstrap::seed_demo(&domain.db.write, &domain.secrets)
            .await
            .map_err(|e| anyhow::anyhow!("seeding the demo team: {e}"))?
    } else {
        None
    };
    let mut settings = opts.engine.clone();
    if settings.public_url.is_none() {
        settings.public_url = opts.public_url.clone();
    }
    let engine = engine::Engine::new(domain.clone(), settings);
    let listen_url = db_cfg
        .url
        .clone()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    let background = Background::start(&engine, opts.workers, listen_url, opts.scheduler);
    let state = api::AppState {
        domain: domain.clone(),
        engine: engine.clone(),
        requests: Default::default(),
        chat_limits: api::ratelimit::RateLimiter::new(opts.chat_rate, opts.enforce_rate_limits),
        upload_quota: api::ratelimit::UploadQuota::new(
            opts.upload_quota_channel,
            opts.upload_quota_client,
        ),
        public_url: match &opts.public_url {
            Some(u) => Some(
                api::url::public_url(u)
                    .map_err(|e| anyhow::anyhow!("--public-url: {e}"))?
                    .into(),
            ),
            None => None,
        },
    };
    let console = console::routes(&state);
    let app = api::app_with(state, console)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http());
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let limits = opts.http;
    let join = tokio::spawn(async move {
        crate::http::serve(listener, app, limits, async {
            let _ = rx.await;
        })
        .await
    });
    tracing::info!(%addr, "chatstudio listening");
    Ok(Running {
        addr,
        seed,
        domain,
        engine,
        shutdown: Some(tx),
        join,
        background,
    })
}

pub fn describe(cfg: &store::DbConfig) -> String {
    match &cfg.url {
        Some(u) => store::connect::redact_url(u),
        None => format!("SQLite in {}", cfg.data_dir.display()),
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The banner printed once, on the start that created the demo team.
pub fn first_start_banner(seed: &DemoSeed, addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    format!(
        "First start: created team `demo` with a demo chatbot ({bot}).\n\
         API key (read-write, shown once — keep it):\n\n    {key}\n\n\
         Talk to it:\n\n    curl -s -H \"X-api-key: {key}\" -H 'Content-Type: application/json' \\\n      -d '{{\"message\": \"Hello!\"}}' http://{host}/channels/api/{bot}/incoming_message\n\n\
         List your chatbots:\n\n    curl -s -H \"X-api-key: {key}\" http://{host}/api/experiments/\n\n\
         Console (sign in at http://{host}/login/, password shown once):\n\n    email:    {email}\n    password: {password}\n",
        bot = seed.chatbot_id,
        key = seed.api_key,
        email = seed.console_email,
        password = seed.console_password,
    )
}

/// `chatstudio worker`: job workers without the HTTP server, until SIGINT/SIGTERM.
pub async fn run_workers(
    db_cfg: &store::DbConfig,
    files_url: Option<&str>,
    settings: engine::EngineSettings,
    workers: usize,
) -> anyhow::Result<()> {
    let domain = open_domain(db_cfg, files_url).await?;
    let engine = engine::Engine::new(domain.clone(), settings);
    let listen_url = db_cfg
        .url
        .clone()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    let background = Background::start(&engine, workers.max(1), listen_url, true);
    tracing::info!(workers, "chatstudio workers running");
    shutdown_signal().await;
    background.stop().await;
    domain.db.close().await;
    Ok(())
}
