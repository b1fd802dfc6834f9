//! Domain services: teams, API keys, chatbots and their versions, pagination.
//! Every operation is scoped by a team id; handlers call these and never touch
//! storage rows directly.

pub mod auth;
pub mod bootstrap;
pub mod chat;
pub mod chatbots;
pub mod conversations;
pub mod error;
pub mod events;
pub mod files;
pub mod jobs;
pub mod keys;
pub mod pagination;
pub mod participants;
pub mod pipeline;
pub mod pricing;
pub mod prompt;
pub mod providers;
pub mod schedules;
pub mod secrets;
pub mod sessions;
pub mod tags;
pub mod teams;
pub mod telegram;
pub mod trigger;
pub mod widget;

pub use error::{Error, Result};
pub use store::Db;

/// What every request handler needs from the domain: the database and the
/// instance secret that signs pagination cursors.
#[derive(Clone)]
pub struct Domain {
    pub db: Db,
    pub cursors: pagination::CursorSigner,
    pub secrets: secrets::SecretBox,
    pub events: events::Events,
    pub files: files::FileStore,
    pub session_tokens: widget::SessionTokens,
    /// Wakes in-process workers when a job is enqueued.
    pub job_signal: std::sync::Arc<tokio::sync::Notify>,
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
        let secret = bootstrap::instance_secret(&db, "cursor_key").await?;
        let token_key = bootstrap::instance_secret(&db, "session_token_key").await?;
        Ok(Self {
            db,
            cursors: pagination::CursorSigner::new(&secret),
            secrets,
            events: events::Events::default(),
            files,
            session_tokens: widget::SessionTokens::new(&token_key),
            job_signal: Default::default(),
        })
    }
}

/// PostgreSQL LISTEN for job wake-ups, re-exported so workers need no sqlx dependency of their own.
pub mod sqlx_listener {
    pub use sea_orm::sqlx::postgres::PgListener;
}
