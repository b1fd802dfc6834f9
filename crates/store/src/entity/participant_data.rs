use sea_orm::entity::prelude::*;

/// A participant's data for one chatbot family. `data` is JSON text so it can
/// become ciphertext later without a schema change.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "participant_data")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub participant_id: i64,
    pub chatbot_id: i64,
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub system_metadata: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
