//! Telegram channels: the bot token sealed at rest and the webhook secret
//! stored as a hash. Inbound updates go through [`super::push::accept`].

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::entity::channel;
use uuid::Uuid;

use super::Platform;
use super::push::{PushChannel, from_row};
use crate::conn::{Reads, Writes};
use crate::secrets::SecretBox;
use crate::{Error, Result};

pub const PLATFORM: Platform = Platform::Telegram;

impl PushChannel {
    /// Whether a webhook request carries this channel's secret (constant time).
    pub fn secret_matches(&self, header: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        match (&self.secret_hash, header) {
            (Some(h), Some(given)) => {
                let g = hex::encode(Sha256::digest(given.as_bytes()));
                bool::from(g.as_bytes().ct_eq(h.as_bytes()))
            }
            _ => false,
        }
    }

    pub fn token(&self, secrets: &SecretBox) -> Result<String> {
        secrets.open(
            self.sealed_secret
                .as_deref()
                .ok_or_else(|| Error::internal("telegram channel without a token"))?,
        )
    }
}

/// Records a Telegram channel for a chatbot (the token was checked with getMe).
pub async fn add(
    db: &impl Writes,
    secrets: &SecretBox,
    chatbot_id: Uuid,
    token: &str,
    webhook_secret: &str,
    bot: Value,
) -> Result<PushChannel> {
    let db = db.writer();
    let head = super::family_head(db, chatbot_id).await?;
    let name = bot
        .get("username")
        .and_then(Value::as_str)
        .map_or_else(|| "Telegram".to_string(), |u| format!("@{u}"));
    let m = channel::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(head.team_id),
        chatbot_id: Set(Some(head.id)),
        platform: Set(PLATFORM.as_str().into()),
        name: Set(name),
        config: Set(json!({"bot": bot})),
        secret: Set(Some(secrets.seal(token)?)),
        enabled: Set(true),
        disabled_message: Set(None),
        deleted: Set(false),
        created_at: Set(store::now()),
        key_hash: Set(Some(hex::encode(Sha256::digest(webhook_secret.as_bytes())))),
        ..Default::default()
    }
    .insert(db)
    .await?;
    from_row(m)
}

pub async fn by_public_id(db: &impl Reads, id: Uuid) -> Result<Option<PushChannel>> {
    channel::Entity::find()
        .filter(channel::Column::PublicId.eq(id))
        .filter(channel::Column::Platform.eq(PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .one(db.reader())
        .await?
        .map(from_row)
        .transpose()
}
