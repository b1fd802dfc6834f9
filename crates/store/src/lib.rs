//! Storage: SeaORM entities, migrations, connection setup and the queries the
//! domain layer needs. Nothing here knows about HTTP.

pub mod connect;
pub mod constraints;
pub mod entity;
pub mod migration;
pub mod usage_rollups;

pub use connect::{Db, DbConfig, connect};
pub use sea_orm::{DbErr, TransactionTrait};

/// Current time truncated to microseconds: the precision both backends store
/// and the API prints, so a value read back compares equal to the one written.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    truncate_micros(chrono::Utc::now())
}

pub fn truncate_micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}
