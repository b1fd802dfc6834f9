//! Messaging providers (a team's WhatsApp credentials: Meta Cloud API,
//! Twilio, Turn.io) and the columns that route a provider's webhook to its
//! channel: the provider, and the platform address the channel answers on
//! (Meta's `phone_number_id`, a Twilio or Turn number).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, add_column, drop_column, drop_index, drop_tables, index, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::new("messaging_providers")
            .col(uuid_uniq("public_id"))
            .col(big_integer("team_id"))
            .col(string("name"))
            .col(string("kind"))
            .col(json_binary("config"))
            .col(text("secret"))
            .col(string_null("lookup_hash"))
            .col(ts("created_at"))
            .fk("team_id", "teams", ForeignKeyAction::Cascade)
            .unique("messaging_providers_team_name_key", &["team_id", "name"])
            // Meta's verification handshake finds its provider by the token's hash.
            .index("messaging_providers_lookup_hash", &["lookup_hash"])
            .create(m)
            .await?;
        add_column(m, "channels", big_integer_null("messaging_provider_id")).await?;
        add_column(m, "channels", string_null("address")).await?;
        m.create_index(index(
            "channels_platform_address",
            "channels",
            &["platform", "address"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_index(m, "channels_platform_address", "channels").await?;
        for col in ["address", "messaging_provider_id"] {
            drop_column(m, "channels", col).await?;
        }
        drop_tables(m, &["messaging_providers"]).await
    }
}
