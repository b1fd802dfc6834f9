//! Custom actions (a team's HTTP APIs described by OpenAPI) and the
//! operations a published chatbot version froze when it was snapshotted.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, add_column, drop_column, drop_tables, ts, ts_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::of_team("custom_actions")
            .col(string_len("name", 100))
            .col(text("description"))
            .col(text("prompt"))
            .col(string_len("server_url", 2000))
            .col(json_binary("api_schema"))
            .col(string_len("auth_kind", 16))
            .col(string_len_null("auth_header", 200))
            .col(string_len_null("auth_username", 200))
            .col(text_null("secret"))
            .col(string_len_null("health_path", 500))
            .col(string_len("health_status", 16))
            .col(ts_null("last_health_check"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .unique("custom_actions_team_name_key", &["team_id", "name"])
            .create(m)
            .await?;
        add_column(m, "chatbots", json_binary_null("action_snapshot")).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_column(m, "chatbots", "action_snapshot").await?;
        drop_tables(m, &["custom_actions"]).await
    }
}
