use sea_orm::entity::prelude::*;

/// A team's custom action: an HTTP API described by an OpenAPI document.
/// `secret` is AES-GCM ciphertext of the auth credential (never the plain
/// value); `auth_header` and `auth_username` are not secret.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "custom_actions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    #[sea_orm(column_type = "Text")]
    pub prompt: String,
    pub server_url: String,
    pub api_schema: Json,
    pub auth_kind: String,
    pub auth_header: Option<String>,
    pub auth_username: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub secret: Option<String>,
    pub health_path: Option<String>,
    pub health_status: String,
    pub last_health_check: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
