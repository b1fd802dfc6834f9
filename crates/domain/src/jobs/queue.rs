//! The durable job queue: rows in `jobs`, enqueued inside the caller's
//! transaction, claimed under a lease by workers in any process.
//!
//! Claiming is one `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING …`:
//! SQLite runs a single statement under its write lock, PostgreSQL adds
//! `FOR UPDATE SKIP LOCKED` so concurrent workers never wait on or take the
//! same row. A worker renews its lease while it runs; a job whose lease
//! lapsed (its worker died) is claimed again. Completion is conditional on
//! still holding the lease, so a job finishes once even if a slow worker
//! comes back after its lease was taken over.
//!
//! The jobs of one session run one at a time, in the order they were
//! enqueued: only a session's oldest unfinished job can be claimed, so two
//! messages sent at once are answered in order and never run two turns on
//! one history together, whichever processes the workers are in. A job
//! waiting out its backoff holds the session's later jobs back until it
//! succeeds or gives up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Set, Statement,
    Value as DbValue,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::entity::job;
use uuid::Uuid;

use super::JobKind;
use crate::conn::{Reads, Writes};
use crate::ids::{SessionId, TeamId};
use crate::text_enum::{stored, text_enum};
use crate::{Db, Error, Result};

text_enum!(
    /// Where a job is in its life.
    pub enum JobStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        /// Finished with an error the handler reported as final.
        Failed = "failed",
        /// Gave up after `max_attempts`.
        Dead = "dead",
    }
);

/// The channel PostgreSQL workers listen on.
pub const NOTIFY_CHANNEL: &str = "chatstudio_jobs";

/// A job of kind `K` to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<K: JobKind> {
    pub payload: K::Payload,
    pub team_id: Option<TeamId>,
    pub session_id: Option<SessionId>,
    pub idempotency_key: Option<String>,
    pub max_attempts: i32,
    pub run_at: Option<DateTime<Utc>>,
}

impl<K: JobKind> NewJob<K> {
    pub fn new(payload: K::Payload) -> Self {
        Self {
            payload,
            team_id: None,
            session_id: None,
            idempotency_key: None,
            max_attempts: K::MAX_ATTEMPTS,
            run_at: None,
        }
    }

    pub fn team(mut self, team: TeamId) -> Self {
        self.team_id = Some(team);
        self
    }

    /// The session the job works on: the chat API only shows a task to its session.
    pub fn session(mut self, session: SessionId) -> Self {
        self.session_id = Some(session);
        self
    }

    /// Enqueuing again with the same key returns the first job's task id.
    pub fn idempotency_key(mut self, key: String) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

/// Enqueues a job on `db` (normally the caller's transaction, so the job
/// exists exactly when the caller's writes do). With an idempotency key that
/// was used before, returns the existing job's task id instead. Prefer
/// `Tx::enqueue`, which also wakes workers once the transaction commits.
pub async fn enqueue<K: JobKind, C: ConnectionTrait>(db: &C, j: NewJob<K>) -> Result<Uuid> {
    let payload = serde_json::to_value(&j.payload)
        .map_err(|e| Error::internal_from(format!("encoding a {} payload", K::KIND), e))?;
    if let Some(key) = &j.idempotency_key
        && let Some(existing) = job::Entity::find()
            .filter(job::Column::IdempotencyKey.eq(key.clone()))
            .one(db)
            .await?
    {
        return Ok(existing.task_id);
    }
    let now = store::now();
    let task_id = Uuid::new_v4();
    let row = job::ActiveModel {
        task_id: Set(task_id),
        kind: Set(K::KIND.to_string()),
        payload: Set(payload),
        status: Set(JobStatus::Queued.as_str().into()),
        attempts: Set(0),
        max_attempts: Set(Ord::max(j.max_attempts, 1)),
        runs: Set(0),
        run_at: Set(j.run_at.map(store::truncate_micros).unwrap_or(now)),
        lease_until: Set(None),
        locked_by: Set(None),
        last_error: Set(None),
        result: Set(None),
        idempotency_key: Set(j.idempotency_key.clone()),
        session_id: Set(j.session_id.map(i64::from)),
        team_id: Set(j.team_id.map(i64::from)),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
        ..Default::default()
    };
    // ON CONFLICT, not a caught violation: on PostgreSQL a failed statement
    // aborts the transaction the job is enqueued in (a racing twin's key).
    let inserted = job::Entity::insert(row)
        .on_conflict(
            OnConflict::column(job::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        return job::Entity::find()
            .filter(job::Column::IdempotencyKey.eq(j.idempotency_key))
            .one(db)
            .await?
            .map(|m| m.task_id)
            .ok_or_else(|| Error::internal("job vanished after a conflict"));
    }
    if db.get_database_backend() == DbBackend::Postgres {
        // Delivered at commit, so listeners never see a job that is not there yet.
        db.execute_unprepared(&format!("NOTIFY {NOTIFY_CHANNEL}"))
            .await?;
    }
    Ok(task_id)
}

#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub task_id: Uuid,
    pub kind: String,
    pub payload: Value,
    pub attempts: i32,
    pub max_attempts: i32,
    pub session_id: Option<SessionId>,
}

impl Claimed {
    /// The payload as kind `K` wrote it.
    pub fn payload<K: JobKind>(&self) -> Result<K::Payload> {
        serde_json::from_value(self.payload.clone())
            .map_err(|e| Error::internal_from(format!("decoding a {} payload", K::KIND), e))
    }

    /// Whether a failure now is the last one the job gets.
    pub fn last_attempt(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

const CLAIM_SQLITE: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = ?, locked_by = ?, updated_at = ? \
     WHERE id = (SELECT id FROM jobs WHERE ((status = 'queued' AND run_at <= ?) OR (status = 'running' AND lease_until < ?)) \
     AND (session_id IS NULL OR id = (SELECT MIN(o.id) FROM jobs o WHERE o.session_id = jobs.session_id AND o.status IN ('queued', 'running'))) \
     ORDER BY run_at, id LIMIT 1) \
     RETURNING id, task_id, kind, payload, attempts, max_attempts, session_id";

const CLAIM_POSTGRES: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = $1, locked_by = $2, updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE ((status = 'queued' AND run_at <= $4) OR (status = 'running' AND lease_until < $5)) \
     AND (session_id IS NULL OR id = (SELECT MIN(o.id) FROM jobs o WHERE o.session_id = jobs.session_id AND o.status IN ('queued', 'running'))) \
     ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id, task_id, kind, payload, attempts, max_attempts, session_id";

fn lease_end(lease: Duration) -> DateTime<Utc> {
    store::now()
        + chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::seconds(60))
}

/// Claims the next due job (or one whose lease lapsed) for `worker`.
pub async fn claim(db: &Db, worker: &str, lease: Duration) -> Result<Option<Claimed>> {
    let now = store::now();
    let backend = db.backend();
    let sql = if backend == DbBackend::Postgres {
        CLAIM_POSTGRES
    } else {
        CLAIM_SQLITE
    };
    let values: Vec<DbValue> = vec![
        lease_end(lease).into(),
        worker.into(),
        now.into(),
        now.into(),
        now.into(),
    ];
    let row = db
        .write
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let payload: Value = match backend {
        DbBackend::Sqlite => {
            // SQLite hands JSON back as text through a raw statement.
            let text: String = row.try_get("", "payload")?;
            serde_json::from_str(&text)
                .map_err(|e| Error::internal_from("a stored job payload is not JSON", e))?
        }
        _ => row.try_get("", "payload")?,
    };
    Ok(Some(Claimed {
        id: row.try_get("", "id")?,
        task_id: row.try_get("", "task_id")?,
        kind: row.try_get("", "kind")?,
        payload,
        attempts: row.try_get("", "attempts")?,
        max_attempts: row.try_get("", "max_attempts")?,
        session_id: row.try_get::<Option<i64>>("", "session_id")?.map(SessionId),
    }))
}

/// Extends the lease; `false` means the worker no longer holds the job.
pub async fn heartbeat(db: &Db, id: i64, worker: &str, lease: Duration) -> Result<bool> {
    let res = job::Entity::update_many()
        .col_expr(job::Column::LeaseUntil, Expr::value(lease_end(lease)))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(job::Column::LockedBy.eq(worker))
        .exec(&db.write)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Why a job ended without its output: what the client may be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFailure {
    pub error: String,
    /// Whether `error` is meant for the end user (else a generic apology is shown).
    #[serde(default)]
    pub user_facing_error: bool,
}

/// How a handler ended, as stored: its output, or a final failure.
#[derive(Debug, Clone)]
pub enum Finished {
    Succeeded(Value),
    Failed(JobFailure),
}

/// Marks the job finished (`succeeded` or a final `failed`) if `worker` still holds it.
pub async fn finish<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    id: i64,
    worker: &str,
    outcome: Finished,
) -> Result<bool> {
    let now = store::now();
    let (status, result, error) = match outcome {
        Finished::Succeeded(v) => (JobStatus::Succeeded, v, None),
        Finished::Failed(f) => {
            let message = f.error.clone();
            let v = serde_json::to_value(f)
                .map_err(|e| Error::internal_from("encoding a job failure", e))?;
            (JobStatus::Failed, v, Some(message))
        }
    };
    let res = job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(status))
        .col_expr(job::Column::Result, Expr::value(result))
        .col_expr(job::Column::LastError, Expr::value(error))
        .col_expr(job::Column::Runs, Expr::col(job::Column::Runs).add(1))
        .col_expr(job::Column::FinishedAt, Expr::value(now))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            job::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::Status.eq(JobStatus::Running))
        .filter(job::Column::LockedBy.eq(worker))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Backoff before retry `attempt` (1-based): 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn backoff(attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(Ord::min(2u64.saturating_pow(exp), 300))
}

/// Returns a failed attempt to the queue with backoff, or buries the job once
/// its attempts are spent.
pub async fn retry_later(db: &Db, c: &Claimed, worker: &str, error: &str) -> Result<()> {
    let now = store::now();
    let dead = c.attempts >= c.max_attempts;
    let run_at = now
        + chrono::Duration::from_std(backoff(c.attempts))
            .unwrap_or_else(|_| chrono::Duration::seconds(1));
    job::Entity::update_many()
        .col_expr(
            job::Column::Status,
            Expr::value(if dead {
                JobStatus::Dead
            } else {
                JobStatus::Queued
            }),
        )
        .col_expr(job::Column::RunAt, Expr::value(run_at))
        .col_expr(job::Column::LastError, Expr::value(error.to_string()))
        .col_expr(
            job::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            job::Column::FinishedAt,
            Expr::value(if dead {
                Some(now)
            } else {
                None::<DateTime<Utc>>
            }),
        )
        .filter(job::Column::Id.eq(c.id))
        .filter(job::Column::LockedBy.eq(worker))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// What a client polling a task learns of it.
#[derive(Debug, Clone)]
pub enum TaskState<T> {
    /// Queued or running.
    Pending,
    Succeeded(T),
    Failed(JobFailure),
    /// Buried after its attempts ran out (the cause is internal).
    Dead,
}

/// A task of kind `K`: its session and state, or `None` when no task of that
/// kind has this id.
pub async fn task<K: JobKind>(
    db: &impl Reads,
    task_id: Uuid,
) -> Result<Option<(Option<SessionId>, TaskState<K::Output>)>> {
    let db = db.reader();
    let Some(row) = job::Entity::find()
        .filter(job::Column::TaskId.eq(task_id))
        .filter(job::Column::Kind.eq(K::KIND))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let result = row.result.unwrap_or(Value::Null);
    let state = match stored::<JobStatus>(&row.status)? {
        JobStatus::Queued | JobStatus::Running => TaskState::Pending,
        JobStatus::Succeeded => TaskState::Succeeded(
            serde_json::from_value(result)
                .map_err(|e| Error::internal_from(format!("decoding a {} output", K::KIND), e))?,
        ),
        JobStatus::Failed => TaskState::Failed(
            serde_json::from_value(result)
                .map_err(|e| Error::internal_from("decoding a job failure", e))?,
        ),
        JobStatus::Dead => TaskState::Dead,
    };
    Ok(Some((row.session_id.map(SessionId), state)))
}
