//! The index that lets a claim find a session's oldest unfinished job
//! without scanning the queue (jobs of one session run in order).

use sea_orm_migration::prelude::*;

use super::util::index;

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
        m.drop_index(
            Index::drop()
                .name("jobs_session_status")
                .table("jobs")
                .to_owned(),
        )
        .await
    }
}
