//! Inbound platform events already accepted (webhook retries are deduplicated).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, drop_tables, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::new("inbound_events")
            .col(big_integer("channel_id"))
            .col(string_len("event_id", 128))
            .col(ts("created_at"))
            .fk("channel_id", "channels", ForeignKeyAction::Cascade)
            .unique("inbound_events_key", &["channel_id", "event_id"])
            .create(m)
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(m, &["inbound_events"]).await
    }
}
