//! Exact session counts per team, chatbot row, status and platform, so the
//! first page of a session list (API and console) sums a few counter rows
//! instead of counting up to millions of sessions. The domain keeps them in
//! the same transaction as every session insert and status change
//! (`domain::sessions::counts`); this migration fills them from the sessions
//! already there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, drop_tables};
use ForeignKeyAction::Cascade;

/// The counts from the sessions themselves (also what a recount runs). A
/// session without a platform counts under '' (a NULL in the key would make
/// every such row distinct to the unique key on both backends).
const FILL: &str = "INSERT INTO session_counts (team_id, chatbot_id, status, platform, n) \
     SELECT team_id, chatbot_id, status, COALESCE(platform, ''), COUNT(*) FROM sessions \
     GROUP BY team_id, chatbot_id, status, COALESCE(platform, '')";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Keyed by what the lists filter on, team first: a team's counter
        // rows are one range of the primary key. The rows go with their team
        // or chatbot, as the sessions they count do (same cascades).
        NewTable::bare("session_counts")
            .col(big_integer("team_id"))
            .col(big_integer("chatbot_id"))
            .col(string_len("status", 20))
            .col(string_len("platform", 128))
            .col(big_integer("n"))
            .primary_key(&["team_id", "chatbot_id", "status", "platform"])
            .fk("team_id", "teams", Cascade)
            .fk("chatbot_id", "chatbots", Cascade)
            .create(m)
            .await?;
        m.get_connection().execute_unprepared(FILL).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(m, &["session_counts"]).await
    }
}
