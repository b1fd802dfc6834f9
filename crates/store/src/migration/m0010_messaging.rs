//! Messaging providers (a team's WhatsApp credentials: Meta Cloud API,
//! Twilio, Turn.io) and the columns that route a provider's webhook to its
//! channel: the provider, and the platform address the channel answers on
//! (Meta's `phone_number_id`, a Twilio or Turn number).

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
                .table("messaging_providers")
                .col(big_pk_auto("id"))
                .col(uuid_uniq("public_id"))
                .col(big_integer("team_id"))
                .col(string("name"))
                .col(string("kind"))
                .col(json_binary("config"))
                .col(text("secret"))
                .col(string_null("lookup_hash"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("messaging_providers", "team_id", "teams", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "messaging_providers_team_name_key",
            "messaging_providers",
            &["team_id", "name"],
            true,
        ))
        .await?;
        // Meta's verification handshake finds its provider by the token's hash.
        m.create_index(index(
            "messaging_providers_lookup_hash",
            "messaging_providers",
            &["lookup_hash"],
            false,
        ))
        .await?;
        // SQLite takes one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table("channels")
                .add_column(big_integer_null("messaging_provider_id"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("channels")
                .add_column(string_null("address"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "channels_platform_address",
            "channels",
            &["platform", "address"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("channels_platform_address")
                .table("channels")
                .to_owned(),
        )
        .await?;
        for col in ["address", "messaging_provider_id"] {
            m.alter_table(Table::alter().table("channels").drop_column(col).to_owned())
                .await?;
        }
        m.drop_table(Table::drop().table("messaging_providers").to_owned())
            .await?;
        Ok(())
    }
}
