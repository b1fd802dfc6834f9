use sea_orm::entity::prelude::*;

/// A scheduled bot message for a participant of a chatbot: one-off, or
/// recurring by interval or cron, until its repetitions or end date run out.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub external_id: String,
    /// The chatbot family (working version row).
    pub chatbot_id: i64,
    pub participant_id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub prompt: String,
    pub next_trigger_at: DateTimeUtc,
    pub timezone: Option<String>,
    pub interval_seconds: Option<i32>,
    pub cron: Option<String>,
    pub repetitions: i32,
    pub total_triggers: i32,
    pub end_date: Option<DateTimeUtc>,
    /// `scheduled`, `complete`, `cancelled` or `failed`.
    pub status: String,
    pub cancelled_at: Option<DateTimeUtc>,
    pub cancelled_by: Option<i64>,
    pub last_triggered_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub params: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
