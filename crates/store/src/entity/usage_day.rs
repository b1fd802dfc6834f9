use sea_orm::entity::prelude::*;

/// One team's activity on one UTC day (`YYYY-MM-DD`) for one chatbot row
/// (0: no chatbot) and model (`''`: the row of messages and sessions), kept
/// in the write path (`crate::usage_rollups`).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_days")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub team_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub chatbot_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub model: String,
    /// Human and AI messages of sessions out of setup.
    pub messages: i64,
    /// Sessions created that day that have left setup.
    pub sessions: i64,
    pub tokens: i64,
    /// In 1e-8 USD.
    pub cost_e8: i64,
}

impl ActiveModelBehavior for ActiveModel {}
