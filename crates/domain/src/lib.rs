//! Domain services: teams, API keys, chatbots and their versions, pagination.
//! Every operation is scoped by a team id; handlers call these and never touch
//! storage rows directly.

pub mod auth;
pub mod bootstrap;
pub mod chatbots;
pub mod conversations;
pub mod error;
pub mod events;
pub mod files;
pub mod keys;
pub mod pagination;
pub mod participants;
pub mod pipeline;
pub mod pricing;
pub mod prompt;
pub mod providers;
pub mod secrets;
pub mod sessions;
pub mod tags;
pub mod teams;

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
}

impl Domain {
    /// Loads (or creates, on first start) the instance secrets kept in the database,
    /// so every process on a shared database signs cursors alike.
    pub async fn open(
        db: Db,
        secrets: secrets::SecretBox,
        files: files::FileStore,
    ) -> Result<Self> {
        let secret = bootstrap::instance_secret(&db, "cursor_key").await?;
        Ok(Self {
            db,
            cursors: pagination::CursorSigner::new(&secret),
            secrets,
            events: events::Events::default(),
            files,
        })
    }
}
