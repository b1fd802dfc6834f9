//! The console's sign-in: a password hash per user (argon2id, PHC string;
//! none for users who only own API keys) and the browser sessions a sign-in
//! opens, each found by its token's hash and carrying its CSRF token.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{fk, index, ts};
use ForeignKeyAction::Cascade;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("users")
                .add_column(text_null("password_hash"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("console_sessions")
                .col(big_pk_auto("id"))
                .col(string_uniq("token_hash"))
                .col(big_integer("user_id"))
                .col(string("csrf_token"))
                // The team last opened in the console: API v1 calls made with
                // the session's cookie act in it.
                .col(big_integer_null("team_id"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .foreign_key(&mut fk("console_sessions", "user_id", "users", Cascade))
                .foreign_key(&mut fk("console_sessions", "team_id", "teams", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "console_sessions_expires",
            "console_sessions",
            &["expires_at"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("console_sessions").to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table("users")
                .drop_column("password_hash")
                .to_owned(),
        )
        .await
    }
}
