use sea_orm::entity::prelude::*;

/// A stored file; its bytes live in the object store under `storage_key`.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "files")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub name: String,
    pub storage_key: Option<String>,
    pub content_type: String,
    pub size: Option<i64>,
    pub purpose: String,
    pub is_archived: bool,
    pub created_at: DateTimeUtc,
    /// Unattached uploads expire; attaching clears it.
    pub expires_at: Option<DateTimeUtc>,
    pub metadata: Option<Json>,
}

impl ActiveModelBehavior for ActiveModel {}
