use sea_orm::entity::prelude::*;

/// A team's LLM provider. The credential and the values of `headers` are
/// AES-GCM ciphertext (never the plain key or header).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "providers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub headers: Json,
    #[sea_orm(column_type = "Text", nullable)]
    pub secret: Option<String>,
    pub timeout_secs: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
