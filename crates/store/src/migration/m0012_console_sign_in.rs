//! The console's sign-in: a password hash per user (argon2id, PHC string;
//! none for users who only own API keys) and the browser sessions a sign-in
//! opens, each found by its token's hash and carrying its CSRF token. And the
//! indexes the console's session filters read by (status, channel), in the
//! list's cursor order, so a filtered page stays one index range at any size.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, add_column, drop_column, drop_index, drop_tables, index, ts};
use ForeignKeyAction::Cascade;

const FILTERS: [(&str, &str); 2] = [
    ("sessions_team_status_idx", "status"),
    ("sessions_team_platform_idx", "platform"),
];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_column(m, "users", text_null("password_hash")).await?;
        NewTable::new("console_sessions")
            .col(string_uniq("token_hash"))
            .col(big_integer("user_id"))
            .col(string("csrf_token"))
            // The team last opened in the console: API v1 calls made with the
            // session's cookie act in it.
            .col(big_integer_null("team_id"))
            .col(ts("created_at"))
            .col(ts("expires_at"))
            .fk("user_id", "users", Cascade)
            .fk("team_id", "teams", Cascade)
            .index("console_sessions_expires", &["expires_at"])
            .create(m)
            .await?;
        for (name, col) in FILTERS {
            m.create_index(index(
                name,
                "sessions",
                &["team_id", col, "created_at", "id"],
                false,
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in FILTERS {
            drop_index(m, name, "sessions").await?;
        }
        drop_tables(m, &["console_sessions"]).await?;
        drop_column(m, "users", "password_hash").await
    }
}
