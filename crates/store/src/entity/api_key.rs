use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub prefix: String,
    /// Hex SHA-256 of the whole key (`prefix.secret`); the secret itself is never stored.
    pub hashed_key: String,
    pub name: String,
    pub team_id: i64,
    pub user_id: i64,
    pub read_only: bool,
    pub revoked: bool,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
