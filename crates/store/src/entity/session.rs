use sea_orm::entity::prelude::*;

/// A conversation (the original's session and its 1:1 chat, in one row).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub external_id: String,
    pub team_id: i64,
    pub participant_id: i64,
    /// The chatbot row the session was started for (working version or snapshot).
    pub chatbot_id: i64,
    pub channel_id: Option<i64>,
    pub status: String,
    /// JSON text (encryptable later without a schema change).
    #[sea_orm(column_type = "Text")]
    pub state: String,
    pub platform: Option<String>,
    /// The version the session talks to; 0 = the published version.
    pub version_number: i32,
    pub metadata: Json,
    pub ended_at: Option<DateTimeUtc>,
    pub ended_by: Option<String>,
    pub first_activity_at: Option<DateTimeUtc>,
    pub last_activity_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Session-bound chat endpoints need a session token (fail closed).
    pub session_token_required: bool,
}

impl ActiveModelBehavior for ActiveModel {}
