//! Daily usage rollups (`crate::usage_rollups`), so the console's usage page
//! sums a few hundred rows instead of scanning a team's messages, sessions
//! and usage records. The domain keeps them in the write path; this
//! migration fills them from what is already there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, drop_tables};
use ForeignKeyAction::Cascade;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Team and day lead both keys: a page over a range of days is one
        // range of each primary key. `chatbot_id` is 0 for spend no chatbot
        // made, so it has no foreign key; the rows go with their team.
        NewTable::bare("usage_days")
            .col(big_integer("team_id"))
            .col(string_len("day", 10))
            .col(big_integer("chatbot_id"))
            .col(string_len("model", 128))
            .col(big_integer("messages"))
            .col(big_integer("sessions"))
            .col(big_integer("tokens"))
            .col(big_integer("cost_e8"))
            .primary_key(&["team_id", "day", "chatbot_id", "model"])
            .fk("team_id", "teams", Cascade)
            .create(m)
            .await?;
        NewTable::bare("usage_active")
            .col(big_integer("team_id"))
            .col(string_len("day", 10))
            .col(big_integer("chatbot_id"))
            .col(big_integer("participant_id"))
            .primary_key(&["team_id", "day", "chatbot_id", "participant_id"])
            .fk("team_id", "teams", Cascade)
            .create(m)
            .await?;
        crate::usage_rollups::recount(m.get_connection(), None).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(m, &["usage_active", "usage_days"]).await
    }
}
