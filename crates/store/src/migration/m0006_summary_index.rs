//! Finding a session's latest history checkpoint reads only checkpoints.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Partial indexes read the same on both backends.
        m.get_connection()
            .execute_unprepared("CREATE INDEX messages_checkpoints_idx ON messages (session_id, id) WHERE summary IS NOT NULL")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX messages_checkpoints_idx")
            .await?;
        Ok(())
    }
}
