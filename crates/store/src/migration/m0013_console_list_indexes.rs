//! Indexes the console's lists and usage page read by, found slow by the
//! bench's `console_pages` rows: sessions by chatbot and by participant in
//! the list's cursor order (so a filtered page is one index range), a
//! team's participants by identifier (the unique key starts with the
//! platform), and a team's messages by time (the usage page's days).

use sea_orm_migration::prelude::*;

use super::util::{drop_index, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str, &[&str]); 4] = [
    (
        "sessions_team_chatbot_idx",
        "sessions",
        &["team_id", "chatbot_id", "created_at", "id"],
    ),
    (
        "sessions_team_participant_idx",
        "sessions",
        &["team_id", "participant_id", "created_at", "id"],
    ),
    (
        "participants_team_identifier_idx",
        "participants",
        &["team_id", "identifier"],
    ),
    (
        "messages_team_created_idx",
        "messages",
        &["team_id", "created_at"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, cols) in INDEXES {
            m.create_index(index(name, table, cols, false)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            drop_index(m, name, table).await?;
        }
        Ok(())
    }
}
