//! The index that lets a claim find a session's oldest unfinished job
//! without scanning the queue (jobs of one session run in order).

use sea_orm_migration::prelude::*;

use super::util::{drop_index, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "jobs_session_status",
            "jobs",
            &["session_id", "status"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_index(m, "jobs_session_status", "jobs").await
    }
}
