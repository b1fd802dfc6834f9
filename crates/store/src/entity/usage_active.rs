use sea_orm::entity::prelude::*;

/// A participant who wrote a human message to one chatbot row of a team on
/// one UTC day (`YYYY-MM-DD`), kept in the write path
/// (`crate::usage_rollups`).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_active")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub team_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub chatbot_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub participant_id: i64,
}

impl ActiveModelBehavior for ActiveModel {}
