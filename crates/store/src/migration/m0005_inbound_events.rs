//! Inbound platform events already accepted (webhook retries are deduplicated).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("inbound_events")
                .col(big_pk_auto("id"))
                .col(big_integer("channel_id"))
                .col(string_len("event_id", 128))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("inbound_events", "channel_id")
                        .to("channels", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("inbound_events_key")
                .table("inbound_events")
                .col("channel_id")
                .col("event_id")
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("inbound_events").to_owned())
            .await
    }
}
