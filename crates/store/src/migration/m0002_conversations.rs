//! Providers, channels, participants and their data, sessions, messages,
//! traces, usage records and team price overrides.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

use super::util::{NewTable, drop_tables, ts, ts_null};
use ForeignKeyAction::{Cascade, SetNull};

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::of_team("providers")
            .col(string_len("name", 100))
            .col(string_len("kind", 32))
            .col(text_null("base_url"))
            .col(json_binary("headers"))
            .col(text_null("secret"))
            .col(integer_null("timeout_secs"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .unique("providers_team_name_key", &["team_id", "name"])
            .create(m)
            .await?;

        NewTable::new("channels")
            .col(uuid_uniq("public_id"))
            .col(big_integer("team_id"))
            .col(big_integer_null("chatbot_id"))
            .col(string_len("platform", 32))
            .col(string_len("name", 255))
            .col(json_binary("config"))
            .col(text_null("secret"))
            .col(boolean("enabled").default(true))
            .col(text_null("disabled_message"))
            .col(boolean("deleted").default(false))
            .col(ts("created_at"))
            .fk("team_id", "teams", Cascade)
            .fk("chatbot_id", "chatbots", Cascade)
            .index("channels_team_platform_idx", &["team_id", "platform"])
            .create(m)
            .await?;
        // One live team-wide API channel per team.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX channels_one_api_per_team ON channels (team_id) \
                 WHERE platform = 'api' AND NOT deleted",
            )
            .await?;

        NewTable::new("participants")
            .col(uuid_uniq("public_id"))
            .col(big_integer("team_id"))
            .col(string_len("platform", 32))
            .col(string_len("identifier", 320))
            .col(string_len("name", 320).default(""))
            .col(string_len("remote_id", 255).default(""))
            .col(big_integer_null("user_id"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .fk("team_id", "teams", Cascade)
            .fk("user_id", "users", SetNull)
            .unique(
                "participants_team_platform_identifier_key",
                &["team_id", "platform", "identifier"],
            )
            .index("participants_list_idx", &["team_id", "created_at", "id"])
            .create(m)
            .await?;

        NewTable::of_team("participant_data")
            .col(big_integer("participant_id"))
            .col(big_integer("chatbot_id"))
            .col(text("data"))
            .col(json_binary("system_metadata"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .fk("participant_id", "participants", Cascade)
            .fk("chatbot_id", "chatbots", Cascade)
            .unique(
                "participant_data_participant_chatbot_key",
                &["participant_id", "chatbot_id"],
            )
            .create(m)
            .await?;

        NewTable::new("sessions")
            .col(string_len_uniq("external_id", 255))
            .col(big_integer("team_id"))
            .col(big_integer("participant_id"))
            .col(big_integer("chatbot_id"))
            .col(big_integer_null("channel_id"))
            .col(string_len("status", 20))
            .col(text("state"))
            .col(string_len_null("platform", 128))
            .col(integer("version_number").default(0))
            .col(json_binary("metadata"))
            .col(ts_null("ended_at"))
            .col(string_len_null("ended_by", 32))
            .col(ts_null("first_activity_at"))
            .col(ts_null("last_activity_at"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .fk("team_id", "teams", Cascade)
            .fk("participant_id", "participants", Cascade)
            .fk("chatbot_id", "chatbots", Cascade)
            .fk("channel_id", "channels", SetNull)
            .index("sessions_list_idx", &["team_id", "created_at", "id"])
            .index(
                "sessions_participant_idx",
                &["participant_id", "chatbot_id", "created_at"],
            )
            .index("sessions_chatbot_idx", &["chatbot_id", "created_at"])
            .create(m)
            .await?;

        NewTable::of_team("messages")
            .col(big_integer("session_id"))
            .col(string_len("role", 16))
            .col(text("content"))
            .col(text_null("summary"))
            .col(json_binary("metadata"))
            .col(ts("created_at"))
            .fk("session_id", "sessions", Cascade)
            .index("messages_session_idx", &["session_id", "created_at", "id"])
            .create(m)
            .await?;

        NewTable::of_team("traces")
            .col(big_integer_null("session_id"))
            .col(big_integer_null("chatbot_id"))
            .col(big_integer_null("participant_id"))
            .col(integer("version_number"))
            .col(string_len("status", 16))
            .col(big_integer("duration_ms"))
            .col(big_integer_null("input_message_id"))
            .col(big_integer_null("output_message_id"))
            .col(text_null("error"))
            .col(integer("llm_calls").default(0))
            .col(ts("created_at"))
            .fk("session_id", "sessions", SetNull)
            .fk("chatbot_id", "chatbots", SetNull)
            .fk("participant_id", "participants", SetNull)
            .index("traces_session_idx", &["session_id"])
            .index("traces_team_idx", &["team_id", "created_at"])
            .create(m)
            .await?;

        NewTable::of_team("usage_records")
            .col(big_integer_null("trace_id"))
            .col(big_integer_null("session_id"))
            .col(big_integer_null("chatbot_id"))
            .col(big_integer_null("participant_id"))
            .col(string_len("source", 16))
            .col(string_len("service_kind", 32))
            .col(string_len("provider_kind", 32))
            .col(string_len("model_name", 128))
            .col(big_integer("quantity"))
            .col(big_integer_null("unit_price_e8"))
            .col(big_integer("cost_e8").default(0))
            .col(string_len("currency", 3))
            .col(string_len("confidence", 16))
            .col(ts("created_at"))
            .fk("trace_id", "traces", SetNull)
            .fk("session_id", "sessions", SetNull)
            .fk("chatbot_id", "chatbots", SetNull)
            .fk("participant_id", "participants", SetNull)
            .index("usage_records_session_idx", &["session_id"])
            .index("usage_records_team_idx", &["team_id", "created_at"])
            .create(m)
            .await?;

        NewTable::of_team("pricing_rules")
            .col(string_len("provider_kind", 32))
            .col(string_len("model_name", 128))
            .col(string_len("service_kind", 32))
            .col(big_integer("unit_price_e8"))
            .col(string_len("currency", 3))
            .col(ts("effective_from"))
            .col(ts_null("effective_to"))
            .col(ts("created_at"))
            .index(
                "pricing_rules_lookup_idx",
                &["team_id", "provider_kind", "model_name", "service_kind"],
            )
            .create(m)
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            m,
            &[
                "pricing_rules",
                "usage_records",
                "traces",
                "messages",
                "sessions",
                "participant_data",
                "participants",
                "channels",
                "providers",
            ],
        )
        .await
    }
}
