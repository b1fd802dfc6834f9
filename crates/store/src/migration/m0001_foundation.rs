//! Teams, users, memberships, API keys and chatbots (working versions and
//! snapshots in one table).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, drop_tables, ts, ts_null};
use ForeignKeyAction::{Cascade, SetNull};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::bare("settings")
            .col(string_len("key", 64).primary_key())
            .col(text("value"))
            .create(m)
            .await?;

        NewTable::new("teams")
            .col(string_len_uniq("slug", 50))
            .col(string_len("name", 100))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .create(m)
            .await?;

        NewTable::new("users")
            .col(string_len_uniq("username", 150))
            .col(string_len("email", 254))
            .col(boolean("is_active").default(true))
            .col(ts("created_at"))
            .create(m)
            .await?;

        NewTable::of_team("memberships")
            .col(big_integer("user_id"))
            .col(string_len("role", 32))
            .col(ts("created_at"))
            .fk("user_id", "users", Cascade)
            .unique("memberships_team_user_key", &["team_id", "user_id"])
            .create(m)
            .await?;

        NewTable::new("api_keys")
            .col(string_len_uniq("prefix", 16))
            .col(string_len("hashed_key", 64))
            .col(string_len("name", 50))
            .col(big_integer("team_id"))
            .col(big_integer("user_id"))
            .col(boolean("read_only").default(true))
            .col(boolean("revoked").default(false))
            .col(ts("created_at"))
            .col(ts_null("expires_at"))
            .fk("team_id", "teams", Cascade)
            .fk("user_id", "users", Cascade)
            .index("api_keys_team_idx", &["team_id"])
            .create(m)
            .await?;

        NewTable::new("chatbots")
            .col(uuid_uniq("public_id"))
            .col(big_integer("team_id"))
            .col(big_integer_null("working_version_id"))
            .col(string_len("name", 128))
            .col(text("description").default(""))
            .col(json_binary("config"))
            .col(integer("version_number").default(1))
            .col(boolean("is_default_version").default(false))
            .col(boolean("is_archived").default(false))
            .col(text("version_description").default(""))
            .col(big_integer_null("owner_id"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .fk("team_id", "teams", Cascade)
            .fk("working_version_id", "chatbots", Cascade)
            .fk("owner_id", "users", SetNull)
            .check("NOT (is_default_version AND working_version_id IS NULL)")
            // The list query: a team's live working versions, newest first.
            .index("chatbots_list_idx", &["team_id", "created_at", "id"])
            .unique(
                "chatbots_family_version_key",
                &["working_version_id", "version_number"],
            )
            .create(m)
            .await?;
        // At most one published snapshot per family. Partial indexes read the
        // same on both backends, so one statement serves both.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX chatbots_one_default_per_family \
                 ON chatbots (working_version_id) WHERE is_default_version",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            m,
            &[
                "chatbots",
                "api_keys",
                "memberships",
                "users",
                "teams",
                "settings",
            ],
        )
        .await
    }
}
