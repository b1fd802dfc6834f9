use sea_orm::entity::prelude::*;

/// A deployment of a chatbot on a platform, or a team-wide pseudo channel
/// (`api`) with no chatbot.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "channels")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub public_id: Uuid,
    pub team_id: i64,
    /// The chatbot family (working version row); `None` for team-wide channels.
    pub chatbot_id: Option<i64>,
    pub platform: String,
    pub name: String,
    /// Non-secret settings (allowed domains, auth level, bot name…).
    pub config: Json,
    /// Encrypted secrets (bot tokens, webhook secrets), never returned.
    #[sea_orm(column_type = "Text", nullable)]
    pub secret: Option<String>,
    pub enabled: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_message: Option<String>,
    pub deleted: bool,
    pub created_at: DateTimeUtc,
    /// SHA-256 (hex) of the widget embed key; the key itself is shown once.
    pub key_hash: Option<String>,
    /// The team's messaging provider whose credentials the channel uses (WhatsApp).
    pub messaging_provider_id: Option<i64>,
    /// Where the platform routes to this channel: Meta's `phone_number_id`,
    /// a Twilio or Turn number.
    pub address: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
