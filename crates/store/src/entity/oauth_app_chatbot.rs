use sea_orm::entity::prelude::*;

/// A chatbot (its working version row) a machine application may start chats with.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_app_chatbots")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub app_id: i64,
    pub chatbot_id: i64,
}

impl ActiveModelBehavior for ActiveModel {}
