use sea_orm::entity::prelude::*;

/// A chat identity, unique per (team, platform, identifier).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "participants")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub public_id: Uuid,
    pub team_id: i64,
    pub platform: String,
    pub identifier: String,
    pub name: String,
    pub remote_id: String,
    pub user_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
