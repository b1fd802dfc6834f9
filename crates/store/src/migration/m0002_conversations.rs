//! Providers, channels, participants and their data, sessions, messages,
//! traces, usage records and team price overrides.

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
                .table("providers")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(string_len("name", 100))
                .col(string_len("kind", 32))
                .col(text_null("base_url"))
                .col(json_binary("headers"))
                .col(text_null("secret"))
                .col(integer_null("timeout_secs"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("providers", "team_id", "teams", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "providers_team_name_key",
            "providers",
            &["team_id", "name"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("channels")
                .col(big_pk_auto("id"))
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
                .foreign_key(&mut fk("channels", "team_id", "teams", Cascade))
                .foreign_key(&mut fk("channels", "chatbot_id", "chatbots", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "channels_team_platform_idx",
            "channels",
            &["team_id", "platform"],
            false,
        ))
        .await?;
        // One live team-wide API channel per team.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX channels_one_api_per_team ON channels (team_id) \
                 WHERE platform = 'api' AND NOT deleted",
            )
            .await?;

        m.create_table(
            Table::create()
                .table("participants")
                .col(big_pk_auto("id"))
                .col(uuid_uniq("public_id"))
                .col(big_integer("team_id"))
                .col(string_len("platform", 32))
                .col(string_len("identifier", 320))
                .col(string_len("name", 320).default(""))
                .col(string_len("remote_id", 255).default(""))
                .col(big_integer_null("user_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("participants", "team_id", "teams", Cascade))
                .foreign_key(&mut fk("participants", "user_id", "users", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "participants_team_platform_identifier_key",
            "participants",
            &["team_id", "platform", "identifier"],
            true,
        ))
        .await?;
        m.create_index(index(
            "participants_list_idx",
            "participants",
            &["team_id", "created_at", "id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("participant_data")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(big_integer("participant_id"))
                .col(big_integer("chatbot_id"))
                .col(text("data"))
                .col(json_binary("system_metadata"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("participant_data", "team_id", "teams", Cascade))
                .foreign_key(&mut fk(
                    "participant_data",
                    "participant_id",
                    "participants",
                    Cascade,
                ))
                .foreign_key(&mut fk(
                    "participant_data",
                    "chatbot_id",
                    "chatbots",
                    Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "participant_data_participant_chatbot_key",
            "participant_data",
            &["participant_id", "chatbot_id"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("sessions")
                .col(big_pk_auto("id"))
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
                .foreign_key(&mut fk("sessions", "team_id", "teams", Cascade))
                .foreign_key(&mut fk(
                    "sessions",
                    "participant_id",
                    "participants",
                    Cascade,
                ))
                .foreign_key(&mut fk("sessions", "chatbot_id", "chatbots", Cascade))
                .foreign_key(&mut fk("sessions", "channel_id", "channels", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "sessions_list_idx",
            "sessions",
            &["team_id", "created_at", "id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "sessions_participant_idx",
            "sessions",
            &["participant_id", "chatbot_id", "created_at"],
            false,
        ))
        .await?;
        m.create_index(index(
            "sessions_chatbot_idx",
            "sessions",
            &["chatbot_id", "created_at"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("messages")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(big_integer("session_id"))
                .col(string_len("role", 16))
                .col(text("content"))
                .col(text_null("summary"))
                .col(json_binary("metadata"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("messages", "team_id", "teams", Cascade))
                .foreign_key(&mut fk("messages", "session_id", "sessions", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "messages_session_idx",
            "messages",
            &["session_id", "created_at", "id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("traces")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
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
                .foreign_key(&mut fk("traces", "team_id", "teams", Cascade))
                .foreign_key(&mut fk("traces", "session_id", "sessions", SetNull))
                .foreign_key(&mut fk("traces", "chatbot_id", "chatbots", SetNull))
                .foreign_key(&mut fk("traces", "participant_id", "participants", SetNull))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "traces_session_idx",
            "traces",
            &["session_id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "traces_team_idx",
            "traces",
            &["team_id", "created_at"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("usage_records")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
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
                .foreign_key(&mut fk("usage_records", "team_id", "teams", Cascade))
                .foreign_key(&mut fk("usage_records", "trace_id", "traces", SetNull))
                .foreign_key(&mut fk("usage_records", "session_id", "sessions", SetNull))
                .foreign_key(&mut fk("usage_records", "chatbot_id", "chatbots", SetNull))
                .foreign_key(&mut fk(
                    "usage_records",
                    "participant_id",
                    "participants",
                    SetNull,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "usage_records_session_idx",
            "usage_records",
            &["session_id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "usage_records_team_idx",
            "usage_records",
            &["team_id", "created_at"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("pricing_rules")
                .col(big_pk_auto("id"))
                .col(big_integer("team_id"))
                .col(string_len("provider_kind", 32))
                .col(string_len("model_name", 128))
                .col(string_len("service_kind", 32))
                .col(big_integer("unit_price_e8"))
                .col(string_len("currency", 3))
                .col(ts("effective_from"))
                .col(ts_null("effective_to"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("pricing_rules", "team_id", "teams", Cascade))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "pricing_rules_lookup_idx",
            "pricing_rules",
            &["team_id", "provider_kind", "model_name", "service_kind"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "pricing_rules",
            "usage_records",
            "traces",
            "messages",
            "sessions",
            "participant_data",
            "participants",
            "channels",
            "providers",
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
