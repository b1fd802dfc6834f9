use sea_orm::entity::prelude::*;

/// An access or refresh token. Only its hash is stored.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    #[sea_orm(unique)]
    pub token_hash: String,
    /// `access` or `refresh`.
    pub kind: String,
    pub app_id: i64,
    /// None for a machine (client credentials) token.
    pub user_id: Option<i64>,
    pub scope: String,
    /// Every token that stems from one grant shares a family.
    pub family: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
