//! Timeout triggers' timers: one per (session, version, trigger), armed by
//! the participant's last message and scanned by due time.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{fk, index, ts};
use ForeignKeyAction::Cascade;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("timeout_timers")
                .col(big_pk_auto("id"))
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
                .foreign_key(&mut fk("timeout_timers", "session_id", "sessions", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "timeout_timers_session_trigger_key",
            "timeout_timers",
            &["session_id", "chatbot_row", "trigger_index"],
            true,
        ))
        .await?;
        // The scan reads the due ones in time order: its cost does not grow
        // with the timers that are not due.
        m.create_index(index(
            "timeout_timers_next_at",
            "timeout_timers",
            &["next_at"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("timeout_timers").to_owned())
            .await?;
        Ok(())
    }
}
