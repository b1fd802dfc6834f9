use sea_orm::entity::prelude::*;

/// A team's messaging credentials (WhatsApp through Meta, Twilio or Turn).
/// `secret` is AES-GCM ciphertext of the secret fields as JSON; `config`
/// holds only what may be shown (account ids, the template language).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messaging_providers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub public_id: Uuid,
    pub team_id: i64,
    pub name: String,
    pub kind: String,
    pub config: Json,
    #[sea_orm(column_type = "Text")]
    pub secret: String,
    /// SHA-256 (hex) of Meta's webhook verify token, to find the provider
    /// the handshake is for.
    pub lookup_hash: Option<String>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
