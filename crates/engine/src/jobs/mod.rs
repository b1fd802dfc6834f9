//! Job handlers, and the one registry that maps each job kind to its handler.
//! A handler receives its kind's typed payload and returns its typed output;
//! the registry decodes and encodes them, so handlers never see JSON.

mod bot_send;
mod channel_notice;
mod channel_turn;
mod chat_turn;
mod email_send;
mod event_fire;
mod schedule_fire;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use domain::jobs::{BotSend, ChatTurn, Claimed, Finished, JobFailure, JobKind, Ping, Pong};
use domain::jobs::{ChannelNotice, ChannelTurn, Delivered, EmailSend, EventFire, ScheduleFire};
use domain::sessions::{self, Session};

use crate::delivery::DeliveryError;
use crate::{Engine, TurnError};

/// Why a handler did not produce its output.
#[derive(Debug)]
pub enum JobError {
    /// Worth another attempt (the queue backs off; the last attempt buries it).
    Retry(String),
    /// Final: reported to whoever polls the task.
    Failed { message: String, user_facing: bool },
}

impl JobError {
    pub fn failed(message: impl Into<String>) -> Self {
        JobError::Failed {
            message: message.into(),
            user_facing: false,
        }
    }

    /// A turn that failed: internal causes are retried, the rest reported.
    pub fn from_turn(e: TurnError) -> Self {
        match e {
            TurnError::Domain(d) if d.is_internal() => JobError::Retry(d.chain()),
            other => JobError::failed(other.public_message()),
        }
    }
}

impl JobError {
    /// The job's answer to a failed delivery: retried unless it cannot help
    /// or this was the job's last attempt.
    pub fn from_delivery(e: DeliveryError, last_attempt: bool) -> Self {
        match e {
            DeliveryError::Blocked(why) => {
                JobError::failed(format!("the participant blocked the bot: {why}"))
            }
            DeliveryError::Final(why) => JobError::failed(why),
            DeliveryError::Retry(why) if last_attempt => JobError::failed(why),
            DeliveryError::Retry(why) => JobError::Retry(why),
        }
    }
}

/// Storage and other internal failures are retried.
impl From<domain::Error> for JobError {
    fn from(e: domain::Error) -> Self {
        JobError::Retry(e.chain())
    }
}

/// The session a job works on; one deleted since it was enqueued ends the job.
async fn session_of(engine: &Engine, id: domain::SessionId) -> Result<Session, JobError> {
    sessions::get(&engine.domain, id)
        .await?
        .ok_or_else(|| JobError::failed("the session no longer exists"))
}

/// A delivery done.
fn delivered() -> Delivered {
    Delivered {
        delivered: true,
        ..Default::default()
    }
}

/// The attempt a handler runs: the engine it runs in and what it knows of
/// the job.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub engine: &'a Engine,
    pub task_id: uuid::Uuid,
    /// A failure now buries the job: handlers record final failures then.
    pub last: bool,
}

/// The handler of one job kind.
#[async_trait]
pub trait Handler: JobKind {
    async fn run(job: Job<'_>, payload: Self::Payload) -> Outcome<Self>;
}

/// A handler's answer: its kind's output, or why there is none.
pub type Outcome<K> = Result<<K as JobKind>::Output, JobError>;

#[async_trait]
impl Handler for Ping {
    async fn run(_: Job<'_>, _: serde_json::Value) -> Outcome<Self> {
        Ok(Pong { pong: true })
    }
}

/// How a claimed job came out, for the worker to record.
pub enum Ran {
    Finished(Finished),
    Retry(String),
}

type Run<'a> = Pin<Box<dyn Future<Output = Ran> + Send + 'a>>;
type Erased = for<'a> fn(&'a Engine, &'a Claimed) -> Run<'a>;

fn erased<'a, H: Handler>(engine: &'a Engine, job: &'a Claimed) -> Run<'a> {
    Box::pin(async move {
        let payload = match job.payload::<H>() {
            Ok(p) => p,
            // A payload this version cannot read will not get better by retrying.
            Err(e) => return Ran::Finished(Finished::Failed(failure(e.chain(), false))),
        };
        let attempt = Job {
            engine,
            task_id: job.task_id,
            last: job.last_attempt(),
        };
        match H::run(attempt, payload).await {
            Ok(out) => match serde_json::to_value(out) {
                Ok(v) => Ran::Finished(Finished::Succeeded(v)),
                Err(e) => Ran::Retry(format!("encoding a {} output: {e}", H::KIND)),
            },
            Err(JobError::Failed {
                message,
                user_facing,
            }) => Ran::Finished(Finished::Failed(failure(message, user_facing))),
            Err(JobError::Retry(why)) => Ran::Retry(why),
        }
    })
}

fn failure(error: String, user_facing_error: bool) -> JobFailure {
    JobFailure {
        error,
        user_facing_error,
    }
}

/// Every job kind with its handler.
pub struct Registry {
    handlers: HashMap<&'static str, Erased>,
    /// Kinds by the names they had before a rename.
    former: HashMap<&'static str, Erased>,
}

impl Registry {
    fn with<H: Handler>(mut self) -> Self {
        self.handlers.insert(H::KIND, erased::<H>);
        if let Some(old) = H::FORMERLY {
            self.former.insert(old, erased::<H>);
        }
        self
    }

    pub async fn run(&self, engine: &Engine, job: &Claimed) -> Ran {
        let kind = job.kind.as_str();
        match self.handlers.get(kind).or_else(|| self.former.get(kind)) {
            Some(run) => run(engine, job).await,
            None => Ran::Finished(Finished::Failed(failure(
                format!("unknown job kind {}", job.kind),
                false,
            ))),
        }
    }

    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.handlers.keys().copied()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            handlers: HashMap::new(),
            former: HashMap::new(),
        }
        .with::<Ping>()
        .with::<ChatTurn>()
        .with::<BotSend>()
        .with::<ChannelTurn>()
        .with::<ChannelNotice>()
        .with::<ScheduleFire>()
        .with::<EmailSend>()
        .with::<EventFire>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_handler() {
        let r = Registry::default();
        let mut have: Vec<&str> = r.kinds().collect();
        have.sort_unstable();
        let mut want = domain::jobs::ALL_KINDS.to_vec();
        want.sort_unstable();
        assert_eq!(have, want);
    }

    #[test]
    fn renamed_kinds_still_run() {
        let r = Registry::default();
        for old in ["telegram.turn", "telegram.notice"] {
            assert!(r.former.contains_key(old), "{old}");
        }
        assert_eq!(ChannelTurn::FORMERLY, Some("telegram.turn"));
    }
}
