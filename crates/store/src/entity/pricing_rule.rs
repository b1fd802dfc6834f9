use sea_orm::entity::prelude::*;

/// A team's price override for one (provider kind, model, service kind).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pricing_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub provider_kind: String,
    pub model_name: String,
    pub service_kind: String,
    /// Price per 1,000 units in 1e-8 currency units.
    pub unit_price_e8: i64,
    pub currency: String,
    pub effective_from: DateTimeUtc,
    pub effective_to: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
