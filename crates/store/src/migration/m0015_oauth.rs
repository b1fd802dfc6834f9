//! OAuth2 for API v1: a team's applications (with the chatbots a machine
//! application may start chats with), the authorization codes the consent
//! page hands out, and the access and refresh tokens. Secrets, codes and
//! tokens are stored as SHA-256 only; a token's `family` ties together every
//! token that stems from one grant, so a reused code or refresh token can
//! revoke all of them at once.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::util::{NewTable, drop_tables, ts, ts_null};
use ForeignKeyAction::{Cascade, SetNull};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        NewTable::of_team("oauth_apps")
            .col(string_uniq("client_id"))
            .col(string("name"))
            .col(string("kind"))
            .col(boolean("confidential"))
            .col(string_null("secret_hash"))
            .col(json_binary("redirect_uris"))
            .col(boolean("pkce_required"))
            .col(big_integer_null("created_by"))
            .col(ts("created_at"))
            .fk("created_by", "users", SetNull)
            .create(m)
            .await?;
        NewTable::new("oauth_app_chatbots")
            .col(big_integer("app_id"))
            .col(big_integer("chatbot_id"))
            .fk("app_id", "oauth_apps", Cascade)
            .fk("chatbot_id", "chatbots", Cascade)
            .unique("oauth_app_chatbots_key", &["app_id", "chatbot_id"])
            .create(m)
            .await?;
        NewTable::of_team("oauth_codes")
            .col(string_uniq("code_hash"))
            .col(big_integer("app_id"))
            .col(big_integer("user_id"))
            .col(string("scope"))
            .col(string("redirect_uri"))
            .col(string_null("code_challenge"))
            .col(string_null("challenge_method"))
            .col(string("family"))
            .col(ts("created_at"))
            .col(ts("expires_at"))
            .col(ts_null("used_at"))
            .fk("app_id", "oauth_apps", Cascade)
            .fk("user_id", "users", Cascade)
            .create(m)
            .await?;
        NewTable::of_team("oauth_tokens")
            .col(string_uniq("token_hash"))
            .col(string("kind"))
            .col(big_integer("app_id"))
            .col(big_integer_null("user_id"))
            .col(string("scope"))
            .col(string("family"))
            .col(ts("created_at"))
            .col(ts("expires_at"))
            .col(ts_null("revoked_at"))
            .fk("app_id", "oauth_apps", Cascade)
            .fk("user_id", "users", Cascade)
            .index("oauth_tokens_family_idx", &["family"])
            .create(m)
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            m,
            &[
                "oauth_tokens",
                "oauth_codes",
                "oauth_app_chatbots",
                "oauth_apps",
            ],
        )
        .await
    }
}
