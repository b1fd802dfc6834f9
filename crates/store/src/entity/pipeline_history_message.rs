use sea_orm::entity::prelude::*;

/// One message of a node's own or a named pipeline history in a session.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pipeline_history_messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub session_id: i64,
    /// `node:<id>` or `named:<name>`.
    pub history_name: String,
    /// `human` or `ai`.
    pub role: String,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    /// A summary of everything before this message (a checkpoint).
    #[sea_orm(column_type = "Text", nullable)]
    pub summary: Option<String>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
