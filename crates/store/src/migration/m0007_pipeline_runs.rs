//! Per-node spans on traces, and the pipeline histories of node- and
//! named-scoped LLM and router nodes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{fk, index, ts};
use ForeignKeyAction::Cascade;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("traces")
                .add_column(json_binary_null("spans"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("pipeline_history_messages")
                .col(big_pk_auto("id"))
                .col(big_integer("session_id"))
                .col(string_len("history_name", 200))
                .col(string_len("role", 16))
                .col(text("content"))
                .col(text_null("summary"))
                .col(ts("created_at"))
                .foreign_key(&mut fk(
                    "pipeline_history_messages",
                    "session_id",
                    "sessions",
                    Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "pipeline_history_messages_lookup_idx",
            "pipeline_history_messages",
            &["session_id", "history_name", "id"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("pipeline_history_messages").to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table("traces")
                .drop_column("spans")
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
