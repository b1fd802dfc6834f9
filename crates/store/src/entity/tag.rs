use sea_orm::entity::prelude::*;

/// A team tag. User tags have `is_system = false` and category `""`; the
/// platform's own tags (version tags on replies…) are system tags.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tags")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub name: String,
    pub is_system: bool,
    pub category: String,
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
