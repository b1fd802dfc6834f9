//! Tags (on sessions and messages), files and their links to sessions, and
//! participant schedules.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

use super::util::{NewTable, drop_tables, index, ts, ts_null};
use ForeignKeyAction::{Cascade, SetNull};

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::of_team("tags")
            .col(string_len("name", 100))
            .col(boolean("is_system").default(false))
            .col(string_len("category", 32).default(""))
            .col(big_integer_null("created_by"))
            .col(ts("created_at"))
            .fk("created_by", "users", SetNull)
            .unique(
                "tags_team_name_kind_key",
                &["team_id", "name", "is_system", "category"],
            )
            .create(m)
            .await?;

        NewTable::new("session_tags")
            .col(big_integer("team_id"))
            .col(big_integer("session_id"))
            .col(big_integer("tag_id"))
            .col(big_integer_null("user_id"))
            .col(ts("created_at"))
            .fk("session_id", "sessions", Cascade)
            .fk("tag_id", "tags", Cascade)
            .fk("user_id", "users", SetNull)
            .unique("session_tags_session_tag_key", &["session_id", "tag_id"])
            .index("session_tags_tag_idx", &["tag_id", "session_id"])
            .create(m)
            .await?;

        NewTable::new("message_tags")
            .col(big_integer("team_id"))
            .col(big_integer("message_id"))
            .col(big_integer("tag_id"))
            .col(ts("created_at"))
            .fk("message_id", "messages", Cascade)
            .fk("tag_id", "tags", Cascade)
            .unique("message_tags_message_tag_key", &["message_id", "tag_id"])
            .index("message_tags_tag_idx", &["tag_id", "message_id"])
            .create(m)
            .await?;

        NewTable::of_team("files")
            .col(string_len("name", 255))
            .col(text_null("storage_key"))
            .col(string_len("content_type", 255).default(""))
            .col(big_integer_null("size"))
            .col(string_len("purpose", 32).default(""))
            .col(boolean("is_archived").default(false))
            .col(ts("created_at"))
            .index("files_team_idx", &["team_id", "id"])
            .create(m)
            .await?;

        NewTable::new("session_files")
            .col(big_integer("session_id"))
            .col(big_integer("file_id"))
            .col(string_len("tool_type", 32))
            .col(ts("created_at"))
            .fk("session_id", "sessions", Cascade)
            .fk("file_id", "files", Cascade)
            .unique("session_files_key", &["session_id", "file_id", "tool_type"])
            .create(m)
            .await?;

        NewTable::of_team("schedules")
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
            .fk("chatbot_id", "chatbots", Cascade)
            .fk("participant_id", "participants", Cascade)
            .fk("cancelled_by", "users", SetNull)
            .unique(
                "schedules_chatbot_participant_external_key",
                &["chatbot_id", "participant_id", "external_id"],
            )
            .index("schedules_due_idx", &["status", "next_trigger_at"])
            .create(m)
            .await?;
        m.create_index(index(
            "participant_data_chatbot_idx",
            "participant_data",
            &["chatbot_id"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            m,
            &[
                "schedules",
                "session_files",
                "files",
                "message_tags",
                "session_tags",
                "tags",
            ],
        )
        .await
    }
}
