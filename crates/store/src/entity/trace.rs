use sea_orm::entity::prelude::*;

/// One row per bot turn (or bot-initiated message).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "traces")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub session_id: Option<i64>,
    pub chatbot_id: Option<i64>,
    pub participant_id: Option<i64>,
    pub version_number: i32,
    /// `success` or `error`.
    pub status: String,
    pub duration_ms: i64,
    pub input_message_id: Option<i64>,
    pub output_message_id: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub llm_calls: i32,
    pub created_at: DateTimeUtc,
    /// One entry per pipeline node that ran (domain `traces::Span`).
    pub spans: Option<Json>,
}

impl ActiveModelBehavior for ActiveModel {}
