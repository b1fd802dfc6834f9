use sea_orm::entity::prelude::*;

/// How many of a team's sessions have one chatbot row, status and platform
/// ('' for none), kept in the write path so a list's first-page count sums a
/// few of these rows instead of counting sessions.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub team_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub chatbot_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub status: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub platform: String,
    pub n: i64,
}

impl ActiveModelBehavior for ActiveModel {}
