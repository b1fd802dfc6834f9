//! Timeout triggers' timers: one per (session, version, trigger), armed by
//! the participant's last message and scanned by due time.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, drop_tables, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::new("timeout_timers")
            .col(big_integer("team_id"))
            .col(big_integer("session_id"))
            .col(big_integer("chatbot_row"))
            .col(integer("trigger_index"))
            .col(big_integer("reference_message_id"))
            .col(big_integer("seconds"))
            .col(integer("times"))
            .col(integer("fired"))
            .col(json_binary("action"))
            .col(ts("next_at"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .fk("session_id", "sessions", ForeignKeyAction::Cascade)
            .unique(
                "timeout_timers_session_trigger_key",
                &["session_id", "chatbot_row", "trigger_index"],
            )
            // The scan reads the due ones in time order: its cost does not grow
            // with the timers that are not due.
            .index("timeout_timers_next_at", &["next_at"])
            .create(m)
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(m, &["timeout_timers"]).await
    }
}
