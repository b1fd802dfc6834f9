//! Per-node spans on traces, and the pipeline histories of node- and
//! named-scoped LLM and router nodes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, add_column, drop_column, drop_tables, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_column(m, "traces", json_binary_null("spans")).await?;
        NewTable::new("pipeline_history_messages")
            .col(big_integer("session_id"))
            .col(string_len("history_name", 200))
            .col(string_len("role", 16))
            .col(text("content"))
            .col(text_null("summary"))
            .col(ts("created_at"))
            .fk("session_id", "sessions", ForeignKeyAction::Cascade)
            .index(
                "pipeline_history_messages_lookup_idx",
                &["session_id", "history_name", "id"],
            )
            .create(m)
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(m, &["pipeline_history_messages"]).await?;
        drop_column(m, "traces", "spans").await
    }
}
