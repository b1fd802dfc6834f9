//! Job workers: claim a job, keep its lease alive while the handler runs,
//! record the outcome. They run inside `serve` (`--workers N`) and as
//! `chatstudio worker` processes; on PostgreSQL they wake on LISTEN/NOTIFY,
//! in-process on a `Notify`, and poll at an interval as a backstop.

use std::sync::Arc;
use std::time::Duration;

use domain::jobs::{self, Claimed};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::Engine;
use crate::jobs::{Ran, Registry};

pub use crate::streams::{StreamHub, StreamMsg};

/// The user-facing text of an internal failure (the original's, verbatim).
pub const DEFAULT_ERROR: &str = "Sorry something went wrong. This was likely an intermittent error related to load.Please try again, and wait a few minutes if this keeps happening.";

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub count: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// PostgreSQL URL to LISTEN on (`None` on SQLite).
    pub listen_url: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            count: 2,
            // Short enough that a crashed worker's job is retried within seconds;
            // renewed every third of it while the job runs.
            lease: Duration::from_secs(15),
            poll_interval: Duration::from_secs(1),
            listen_url: None,
        }
    }
}

pub fn spawn(
    engine: Engine,
    cfg: WorkerConfig,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    if let Some(url) = cfg.listen_url.clone() {
        handles.push(tokio::spawn(listen(
            url,
            engine.domain.job_signal.clone(),
            shutdown.clone(),
        )));
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    let registry = Arc::new(Registry::default());
    for n in 0..cfg.count {
        let worker = format!(
            "{host}:{}:{n}:{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..6]
        );
        handles.push(tokio::spawn(run_worker(
            engine.clone(),
            registry.clone(),
            cfg.clone(),
            worker,
            shutdown.clone(),
        )));
    }
    handles
}

async fn listen(
    url: String,
    signal: Arc<tokio::sync::Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    use domain::sqlx_listener::PgListener;
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "job listener: cannot connect; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        if let Err(e) = listener.listen(jobs::NOTIFY_CHANNEL).await {
            tracing::warn!(error = %e, "job listener: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        loop {
            tokio::select! {
                r = listener.recv() => match r {
                    Ok(_) => signal.notify_waiters(),
                    Err(e) => {
                        tracing::warn!(error = %e, "job listener: connection lost; reconnecting");
                        break;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn run_worker(
    engine: Engine,
    registry: Arc<Registry>,
    cfg: WorkerConfig,
    worker: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let db = engine.domain.db.clone();
    let signal = engine.domain.job_signal.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Armed before claiming, so a job enqueued in between still wakes us.
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match jobs::claim(&db, &worker, cfg.lease).await {
            Ok(Some(job)) => run_one(&engine, &registry, &cfg, &worker, job).await,
            Ok(None) => {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(cfg.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "claiming a job failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

async fn run_one(
    engine: &Engine,
    registry: &Registry,
    cfg: &WorkerConfig,
    worker: &str,
    job: Claimed,
) {
    let db = engine.domain.db.clone();
    if job.attempts > job.max_attempts {
        if let Err(e) =
            jobs::retry_later(&db, &job, worker, "gave up: the job's workers kept dying").await
        {
            tracing::error!(task = %job.task_id, error = %e.chain(), "burying a job whose workers kept dying");
        }
        return;
    }
    let beat = {
        let (db, worker, id, lease) = (db.clone(), worker.to_string(), job.id, cfg.lease);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match jobs::heartbeat(&db, id, &worker, lease).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(error = %e.chain(), "job heartbeat failed"),
                }
            }
        })
    };
    let ran = registry.run(engine, &job).await;
    beat.abort();
    let recorded = match ran {
        Ran::Finished(outcome) => jobs::finish(&db.write, job.id, worker, outcome).await,
        Ran::Retry(why) => {
            tracing::warn!(task = %job.task_id, kind = %job.kind, error = %why, attempt = job.attempts, "job failed; will retry");
            jobs::retry_later(&db, &job, worker, &why)
                .await
                .map(|()| true)
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(task = %job.task_id, "job finished after its lease was taken over")
        }
        Err(e) => {
            tracing::error!(task = %job.task_id, error = %e.chain(), "recording a job outcome failed")
        }
    }
}
