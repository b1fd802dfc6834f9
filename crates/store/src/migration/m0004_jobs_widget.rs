//! The durable job queue, widget channel keys, session tokens and upload expiry.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, add_column, drop_tables, index, ts, ts_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::new("jobs")
            .col(uuid_uniq("task_id"))
            .col(string_len("kind", 64))
            .col(json_binary("payload"))
            .col(string_len("status", 16))
            .col(integer("attempts").default(0))
            .col(integer("max_attempts").default(5))
            .col(integer("runs").default(0))
            .col(ts("run_at"))
            .col(ts_null("lease_until"))
            .col(string_len_null("locked_by", 64))
            .col(text_null("last_error"))
            .col(json_binary_null("result"))
            .col(string_len_null("idempotency_key", 128).unique_key())
            .col(big_integer_null("session_id"))
            .col(big_integer_null("team_id"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .col(ts_null("finished_at"))
            .index("jobs_claim_idx", &["status", "run_at", "id"])
            .create(m)
            .await?;
        add_column(m, "channels", string_len_null("key_hash", 64)).await?;
        m.create_index(index(
            "channels_key_hash_idx",
            "channels",
            &["key_hash"],
            false,
        ))
        .await?;
        add_column(
            m,
            "sessions",
            boolean("session_token_required").default(true),
        )
        .await?;
        add_column(m, "files", ts_null("expires_at")).await?;
        add_column(m, "files", json_binary_null("metadata")).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(m, &["jobs"]).await
    }
}
