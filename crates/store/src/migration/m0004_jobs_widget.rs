//! The durable job queue, widget channel keys, session tokens and upload expiry.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("jobs")
                .col(big_pk_auto("id"))
                .col(uuid_uniq("task_id"))
                .col(string_len("kind", 64))
                .col(json_binary("payload"))
                .col(string_len("status", 16))
                .col(integer("attempts").default(0))
                .col(integer("max_attempts").default(5))
                .col(integer("runs").default(0))
                .col(timestamp_with_time_zone("run_at"))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(string_len_null("locked_by", 64))
                .col(text_null("last_error"))
                .col(json_binary_null("result"))
                .col(string_len_null("idempotency_key", 128).unique_key())
                .col(big_integer_null("session_id"))
                .col(big_integer_null("team_id"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("jobs_claim_idx")
                .table("jobs")
                .col("status")
                .col("run_at")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("channels")
                .add_column(string_len_null("key_hash", 64))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("channels_key_hash_idx")
                .table("channels")
                .col("key_hash")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("sessions")
                .add_column(boolean("session_token_required").default(true))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("files")
                .add_column(timestamp_with_time_zone_null("expires_at"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("files")
                .add_column(json_binary_null("metadata"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("jobs").to_owned()).await?;
        Ok(())
    }
}
