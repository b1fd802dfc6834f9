//! Domain services, one module per resource: each owns its rows' queries and
//! invariants, and callers (the API, the engine, the CLI) compose them.
//! Every operation is scoped by a team id; handlers call these and never
//! touch storage rows directly.

pub(crate) mod text_enum;

pub mod actions;
pub mod auth;
pub mod bootstrap;
pub mod catalog;
pub mod channels;
pub mod chatbot_versions;
pub mod chatbots;
pub mod conn;
pub mod error;
pub mod event_triggers;
pub mod events;
pub mod files;
pub mod histories;
pub mod ids;
pub mod jinja;
pub mod jobs;
pub mod keys;
pub mod messages;
pub mod messaging;
pub mod oauth;
pub mod onboarding;
pub mod pagination;
pub mod participants;
pub mod pipeline;
pub mod pricing;
pub mod prompt;
pub mod providers;
pub mod roles;
pub mod schedules;
pub mod secrets;
pub mod sessions;
pub mod signins;
pub mod tags;
pub mod teams;
pub mod timeouts;
pub mod traces;
pub mod trigger;
pub mod turns;
pub mod usage;
pub mod users;
pub mod values;
pub mod versions;
pub mod voice;

use std::ops::Deref;

pub use conn::{Reads, Writes};
pub use error::{Error, Result};
pub use ids::{
    ChannelId, ChatbotId, MessageId, ParticipantId, ScheduleId, SessionId, TeamId, UserId,
};
pub use store::Db;
pub use text_enum::UnknownValue;

use sea_orm::{DatabaseTransaction, TransactionTrait};

/// What every request handler needs from the domain: the database and the
/// instance secret that signs pagination cursors.
#[derive(Clone)]
pub struct Domain {
    pub db: Db,
    pub cursors: pagination::CursorSigner,
    pub secrets: secrets::SecretBox,
    pub events: events::Events,
    pub files: files::FileStore,
    pub session_tokens: channels::widget::SessionTokens,
    /// Wakes in-process workers when a job is enqueued.
    pub job_signal: std::sync::Arc<tokio::sync::Notify>,
    /// What turns read and rarely changes, cached per process.
    pub catalog: std::sync::Arc<catalog::Catalog>,
}

impl Domain {
    /// Wakes in-process workers for `jobs` new jobs: one worker for one job
    /// (a permit is kept if none is waiting), all of them for a batch.
    pub fn wake_workers(&self, jobs: usize) {
        match jobs {
            0 => {}
            1 => self.job_signal.notify_one(),
            _ => self.job_signal.notify_waiters(),
        }
    }

    /// Loads (or creates, on first start) the instance secrets kept in the database,
    /// so every process on a shared database signs cursors alike.
    pub async fn open(
        db: Db,
        secrets: secrets::SecretBox,
        files: files::FileStore,
    ) -> Result<Self> {
        let secret = bootstrap::instance_secret(&db, &secrets, "cursor_key").await?;
        let token_key = bootstrap::instance_secret(&db, &secrets, "session_token_key").await?;
        providers::seal_plain_headers(&db.write, &secrets).await?;
        Ok(Self {
            db,
            cursors: pagination::CursorSigner::new(&secret),
            secrets,
            events: events::Events::default(),
            files,
            session_tokens: channels::widget::SessionTokens::new(&token_key),
            job_signal: Default::default(),
            catalog: Default::default(),
        })
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx<'_>> {
        Ok(Tx {
            txn: self.db.write.begin().await?,
            domain: self,
            events: Vec::new(),
            jobs: std::sync::atomic::AtomicUsize::new(0),
            session_counts: Default::default(),
            usage: Default::default(),
        })
    }
}

/// A write transaction of the domain. Queries run on it as on a connection
/// (it derefs to the database transaction); what it raises takes effect only
/// when it commits: its events are emitted and workers are woken for its jobs
/// then, and a transaction dropped without commit rolls back and says nothing.
pub struct Tx<'d> {
    txn: DatabaseTransaction,
    domain: &'d Domain,
    events: Vec<events::Event>,
    /// Jobs enqueued (counted behind `&self`, so services that only read
    /// the transaction can still enqueue).
    jobs: std::sync::atomic::AtomicUsize,
    /// Changes to the session counters, written just before commit (behind
    /// `&self`, like `jobs`: session writes take `&Tx`).
    session_counts: std::sync::Mutex<sessions::counts::Deltas>,
    /// Rows the usage rollups count, counted just before commit.
    usage: std::sync::Mutex<usage::rollups::Pending>,
}

impl Tx<'_> {
    /// The domain the transaction is on (its caches, its secrets).
    pub(crate) fn domain(&self) -> &Domain {
        self.domain
    }

    /// The event is emitted after commit.
    pub fn raise(&mut self, event: events::Event) {
        self.events.push(event);
    }

    /// Enqueues a job in this transaction; workers are woken after commit.
    pub async fn enqueue<K: jobs::JobKind>(&self, job: jobs::NewJob<K>) -> Result<uuid::Uuid> {
        let id = jobs::enqueue(&self.txn, job).await?;
        self.jobs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(id)
    }

    /// Counts a session leaving one counter (`-1`) or joining one (`+1`).
    pub(crate) fn count_session(&self, key: sessions::counts::Key, delta: i64) {
        // A poisoned lock only means another holder panicked mid-insert;
        // the map itself is still whole.
        let mut counts = self
            .session_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(key).or_default() += delta;
    }

    /// What this transaction wrote that the usage rollups count.
    pub(crate) fn usage(&self) -> std::sync::MutexGuard<'_, usage::rollups::Pending> {
        // As with the session counters: a poisoned lock leaves a whole list.
        self.usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn commit(self) -> Result<()> {
        let usage = self
            .usage
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        usage::rollups::write(&self.txn, usage).await?;
        let counts = self
            .session_counts
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Last, so the counter rows stay locked (PostgreSQL) only for the
        // commit itself, and in key order, so two transactions never wait
        // on each other's counters in a circle.
        sessions::counts::write(&self.txn, counts).await?;
        self.txn.commit().await?;
        for e in self.events {
            self.domain.events.emit(e);
        }
        self.domain
            .wake_workers(self.jobs.load(std::sync::atomic::Ordering::Relaxed));
        Ok(())
    }
}

impl Deref for Tx<'_> {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

/// PostgreSQL LISTEN for job wake-ups, re-exported so workers need no sqlx dependency of their own.
pub mod sqlx_listener {
    pub use sea_orm::sqlx::postgres::PgListener;
}
