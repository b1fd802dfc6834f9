use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub session_id: i64,
    /// `human`, `ai` or `system`.
    pub role: String,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    /// A history checkpoint: the summary of everything before this message.
    #[sea_orm(column_type = "Text", nullable)]
    pub summary: Option<String>,
    pub metadata: Json,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
