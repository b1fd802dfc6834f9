//! Job workers: claim a job, keep its lease alive while the handler runs,
//! record the outcome. They run inside `serve` (`--workers N`) and as
//! `chatstudio worker` processes; on PostgreSQL they wake on LISTEN/NOTIFY,
//! in-process on a `Notify`, and poll at an interval as a backstop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::chatbots;
use domain::conversations as conv;
use domain::jobs::{self, Claimed};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::{Engine, TurnError};

pub const CHAT_TURN: &str = domain::chat::CHAT_TURN_JOB;
/// A job that does nothing: for checking that workers run, and for tests.
pub const PING: &str = "ping";

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

/// Live reply streams of running chat turns, by task id (this process only).
#[derive(Clone, Default)]
pub struct StreamHub {
    inner: Arc<Mutex<HashMap<Uuid, broadcast::Sender<StreamMsg>>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamMsg {
    Delta(String),
    Done,
}

impl StreamHub {
    fn open(&self, task: Uuid) -> broadcast::Sender<StreamMsg> {
        let (tx, _) = broadcast::channel(256);
        if let Ok(mut m) = self.inner.lock() {
            m.insert(task, tx.clone());
        }
        tx
    }

    fn close(&self, task: Uuid) {
        if let Ok(mut m) = self.inner.lock()
            && let Some(tx) = m.remove(&task)
        {
            let _ = tx.send(StreamMsg::Done);
        }
    }

    /// Subscribes to a turn running in this process, if it is.
    pub fn subscribe(&self, task: Uuid) -> Option<broadcast::Receiver<StreamMsg>> {
        self.inner
            .lock()
            .ok()?
            .get(&task)
            .map(broadcast::Sender::subscribe)
    }
}

/// How a handler ended.
pub(crate) enum Outcome {
    Done(Value),
    /// Final failure reported to the client (no retry).
    Failed {
        user_facing: bool,
        message: String,
    },
}

impl Outcome {
    pub(crate) fn failed(message: &str) -> Self {
        Outcome::Failed {
            user_facing: false,
            message: message.to_string(),
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
    for n in 0..cfg.count {
        let worker = format!(
            "{host}:{}:{n}:{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..6]
        );
        handles.push(tokio::spawn(run_worker(
            engine.clone(),
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
            Ok(Some(job)) => run_one(&engine, &cfg, &worker, job).await,
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

async fn run_one(engine: &Engine, cfg: &WorkerConfig, worker: &str, job: Claimed) {
    let db = engine.domain.db.clone();
    if job.attempts > job.max_attempts {
        let _ = jobs::retry_later(&db, &job, worker, "gave up: the job's workers kept dying").await;
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
                    Err(e) => tracing::warn!(error = %e, "job heartbeat failed"),
                }
            }
        })
    };
    let outcome = match job.kind.as_str() {
        PING => Ok(Outcome::Done(json!({"pong": true}))),
        CHAT_TURN => chat_turn(engine, &job).await,
        crate::delivery::BOT_SEND => {
            engine
                .job_bot_send(&job.payload, job.attempts >= job.max_attempts)
                .await
        }
        crate::delivery::TELEGRAM_TURN => {
            engine
                .job_telegram_turn(&job.payload, job.attempts >= job.max_attempts)
                .await
        }
        domain::schedules::FIRE_JOB => {
            engine
                .job_schedule_fire(&job.payload, job.attempts >= job.max_attempts)
                .await
        }
        other => Ok(Outcome::Failed {
            user_facing: false,
            message: format!("unknown job kind {other}"),
        }),
    };
    beat.abort();
    let recorded = match outcome {
        Ok(Outcome::Done(result)) => {
            jobs::finish(&db.write, job.id, worker, true, result, None).await
        }
        Ok(Outcome::Failed {
            user_facing,
            message,
        }) => {
            let result = json!({"error": message, "user_facing_error": user_facing});
            jobs::finish(&db.write, job.id, worker, false, result, Some(&message)).await
        }
        Err(e) => {
            tracing::warn!(task = %job.task_id, error = %e, attempt = job.attempts, "job failed; will retry");
            jobs::retry_later(&db, &job, worker, &e)
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
            tracing::error!(task = %job.task_id, error = %e, "recording a job outcome failed")
        }
    }
}

/// Runs the turn of a chat message that the API persisted and enqueued.
/// Idempotent: a turn that already has a reply (its worker died after
/// writing it) is not run again.
async fn chat_turn(engine: &Engine, job: &Claimed) -> Result<Outcome, String> {
    let p = &job.payload;
    let message_id = p
        .get("message_id")
        .and_then(Value::as_i64)
        .ok_or("payload without message_id")?;
    let session_id = p
        .get("session_id")
        .and_then(Value::as_i64)
        .ok_or("payload without session_id")?;
    let version = p
        .get("version")
        .and_then(Value::as_i64)
        .and_then(|v| i32::try_from(v).ok());
    let db = &engine.domain.db;
    if let Some((id, text)) = conv::finished_turn(&db.read, message_id)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(Outcome::Done(json!({"response": text, "message_id": id})));
    }
    let Some(session) = conv::session_by_id(&db.read, session_id)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(Outcome::Failed {
            user_facing: false,
            message: "the session no longer exists".into(),
        });
    };
    if let Some(ctx) = p.get("context").filter(|c| !c.is_null()) {
        conv::set_state_key(&db.write, session.id, "remote_context", ctx.clone())
            .await
            .map_err(|e| e.to_string())?;
    }
    let text = p
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let public = chatbots::public_id_of(&db.read, session.chatbot_id)
        .await
        .map_err(|e| e.to_string())?;
    let chatbot = match chatbots::resolve(
        &db.read,
        session.team_id,
        public,
        Some(version.unwrap_or(0)),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            return Ok(Outcome::Failed {
                user_facing: true,
                message: e.to_string(),
            });
        }
    };
    let session = conv::session_by_id(&db.read, session_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the session vanished")?;
    let hub = engine.streams.open(job.task_id);
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let forward = {
        let hub = hub.clone();
        async move {
            while let Some(d) = rx.recv().await {
                let _ = hub.send(StreamMsg::Delta(d));
            }
        }
    };
    let (result, ()) = tokio::join!(
        engine.run_turn(&session, &chatbot, message_id, text, Some(tx)),
        forward
    );
    engine.streams.close(job.task_id);
    match result {
        Ok(reply) => Ok(Outcome::Done(
            json!({"response": reply.text, "message_id": reply.message_id}),
        )),
        Err(TurnError::Domain(domain::Error::Internal(e))) => Err(e),
        Err(e) => Ok(Outcome::Failed {
            user_facing: false,
            message: e.public_message(),
        }),
    }
}
