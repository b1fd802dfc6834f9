//! Tags (on sessions and messages), files and their links to sessions, and
//! participant schedules.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

use super::util::{fk, index, ts, ts_null};
use ForeignKeyAction::{Cascade, SetNull};

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tags")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(string_len("name", 100))
                .col(boolean("is_system").default(false))
                .col(string_len("category", 32).default(""))
                .col(big_integer_null("created_by"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("tags", "team_id", "teams", Cascade))
                .foreign_key(&mut fk("tags", "created_by", "users", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "tags_team_name_kind_key",
            "tags",
            &["team_id", "name", "is_system", "category"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("session_tags")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(big_integer("session_id"))
                .col(big_integer("tag_id"))
                .col(big_integer_null("user_id"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("session_tags", "session_id", "sessions", Cascade))
                .foreign_key(&mut fk("session_tags", "tag_id", "tags", Cascade))
                .foreign_key(&mut fk("session_tags", "user_id", "users", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "session_tags_session_tag_key",
            "session_tags",
            &["session_id", "tag_id"],
            true,
        ))
        .await?;
        m.create_index(index(
            "session_tags_tag_idx",
            "session_tags",
            &["tag_id", "session_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("message_tags")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(big_integer("message_id"))
                .col(big_integer("tag_id"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("message_tags", "message_id", "messages", Cascade))
                .foreign_key(&mut fk("message_tags", "tag_id", "tags", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "message_tags_message_tag_key",
            "message_tags",
            &["message_id", "tag_id"],
            true,
        ))
        .await?;
        m.create_index(index(
            "message_tags_tag_idx",
            "message_tags",
            &["tag_id", "message_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("files")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(string_len("name", 255))
                .col(text_null("storage_key"))
                .col(string_len("content_type", 255).default(""))
                .col(big_integer_null("size"))
                .col(string_len("purpose", 32).default(""))
                .col(boolean("is_archived").default(false))
                .col(ts("created_at"))
                .foreign_key(&mut fk("files", "team_id", "teams", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index("files_team_idx", "files", &["team_id", "id"], false))
            .await?;

        m.create_table(
            Table::create()
                .table("session_files")
                .col(big_pk_auto("id"))
                .col(big_integer("session_id"))
                .col(big_integer("file_id"))
                .col(string_len("tool_type", 32))
                .col(ts("created_at"))
                .foreign_key(&mut fk("session_files", "session_id", "sessions", Cascade))
                .foreign_key(&mut fk("session_files", "file_id", "files", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "session_files_key",
            "session_files",
            &["session_id", "file_id", "tool_type"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("schedules")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(string_len("external_id", 32))
                .col(big_integer("chatbot_id"))
                .col(big_integer("participant_id"))
                .col(string_len("name", 255))
                .col(text("prompt"))
                .col(ts("next_trigger_at"))
                .col(string_len_null("timezone", 64))
                .col(integer_null("interval_seconds"))
                .col(string_len_null("cron", 128))
                .col(integer("repetitions").default(1))
                .col(integer("total_triggers").default(0))
                .col(ts_null("end_date"))
                .col(string_len("status", 16))
                .col(ts_null("cancelled_at"))
                .col(big_integer_null("cancelled_by"))
                .col(ts_null("last_triggered_at"))
                .col(text_null("last_error"))
                .col(json_binary("params"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("schedules", "team_id", "teams", Cascade))
                .foreign_key(&mut fk("schedules", "chatbot_id", "chatbots", Cascade))
                .foreign_key(&mut fk(
                    "schedules",
                    "participant_id",
                    "participants",
                    Cascade,
                ))
                .foreign_key(&mut fk("schedules", "cancelled_by", "users", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "schedules_chatbot_participant_external_key",
            "schedules",
            &["chatbot_id", "participant_id", "external_id"],
            true,
        ))
        .await?;
        m.create_index(index(
            "schedules_due_idx",
            "schedules",
            &["status", "next_trigger_at"],
            false,
        ))
        .await?;
        m.create_index(index(
            "participant_data_chatbot_idx",
            "participant_data",
            &["chatbot_id"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "schedules",
            "session_files",
            "files",
            "message_tags",
            "session_tags",
            "tags",
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
