use sea_orm::entity::prelude::*;

/// A chatbot row: either the working version of a family (`working_version_id`
/// is `None`) or an immutable numbered snapshot pointing at it.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "chatbots")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub public_id: Uuid,
    pub team_id: i64,
    pub working_version_id: Option<i64>,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    /// The whole configuration (pipeline and settings) as one JSON document;
    /// a snapshot copies it verbatim.
    pub config: Json,
    /// On the working version: the number the next snapshot gets.
    pub version_number: i32,
    /// On a snapshot: the custom action operations its pipeline uses, as
    /// they were when it was taken (the working version reads them live).
    pub action_snapshot: Option<Json>,
    pub is_default_version: bool,
    pub is_archived: bool,
    #[sea_orm(column_type = "Text")]
    pub version_description: String,
    pub owner_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
