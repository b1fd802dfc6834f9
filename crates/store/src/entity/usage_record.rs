use sea_orm::entity::prelude::*;

/// Tokens of one kind used by one model in one trace, with the price applied.
/// Money is stored in units of 1e-8 of the currency, so sums are exact.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub trace_id: Option<i64>,
    pub session_id: Option<i64>,
    pub chatbot_id: Option<i64>,
    pub participant_id: Option<i64>,
    pub source: String,
    /// `llm_input`, `llm_output`, `llm_cached_input` or `llm_cache_write`.
    pub service_kind: String,
    pub provider_kind: String,
    pub model_name: String,
    pub quantity: i64,
    /// Price per 1,000 units, in 1e-8 currency units; `None` when unpriced.
    pub unit_price_e8: Option<i64>,
    pub cost_e8: i64,
    pub currency: String,
    /// `exact`, `estimated` or `unknown`.
    pub confidence: String,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
