//! Custom actions (a team's HTTP APIs described by OpenAPI) and the
//! operations a published chatbot version froze when it was snapshotted.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{fk, index, ts, ts_null};
use ForeignKeyAction::Cascade;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("custom_actions")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
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
                .foreign_key(&mut fk("custom_actions", "team_id", "teams", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "custom_actions_team_name_key",
            "custom_actions",
            &["team_id", "name"],
            true,
        ))
        .await?;
        m.alter_table(
            Table::alter()
                .table("chatbots")
                .add_column(json_binary_null("action_snapshot"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("chatbots")
                .drop_column("action_snapshot")
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table("custom_actions").to_owned())
            .await?;
        Ok(())
    }
}
