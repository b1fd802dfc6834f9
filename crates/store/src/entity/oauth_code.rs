use sea_orm::entity::prelude::*;

/// An authorization code, granted on the consent page and redeemed once.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_codes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    /// Hex SHA-256 of the code; the code itself is never stored.
    #[sea_orm(unique)]
    pub code_hash: String,
    pub app_id: i64,
    pub user_id: i64,
    pub scope: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub challenge_method: Option<String>,
    /// The token family the code's tokens will belong to.
    pub family: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
