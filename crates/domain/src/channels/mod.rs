//! Channels: a chatbot's deployments on platforms (Telegram, the web widget,
//! the team-wide API channel), and the inbound events they accept once.

pub mod telegram;
pub mod widget;

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use store::constraints::API_CHANNEL;
use store::entity::channel;
use uuid::Uuid;

use crate::conn::{Reads, Writes};
use crate::ids::{ChannelId, ChatbotId, TeamId};
use crate::text_enum::text_enum;
use crate::{Error, Result};

text_enum!(
    /// Where a participant talks to a chatbot (the original's platform names).
    pub enum Platform {
        Telegram = "telegram",
        Web = "web",
        Whatsapp = "whatsapp",
        Facebook = "facebook",
        Sureadhere = "sureadhere",
        Api = "api",
        Slack = "slack",
        CommcareConnect = "commcare_connect",
        Evaluations = "evaluations",
        EmbeddedWidget = "embedded_widget",
        Email = "email",
    }
);

impl Platform {
    /// Identifiers on this platform compare case-insensitively: stored lowercased.
    pub fn normalize_identifier(self, identifier: &str) -> String {
        match self {
            Platform::CommcareConnect => identifier.to_lowercase(),
            _ => identifier.to_string(),
        }
    }
}

/// The team-wide `api` channel, created on first use.
pub async fn api_channel(db: &impl Writes, team_id: TeamId) -> Result<ChannelId> {
    let db = db.writer();
    let find = || {
        channel::Entity::find()
            .filter(channel::Column::TeamId.eq(team_id))
            .filter(channel::Column::Platform.eq(Platform::Api))
            .filter(channel::Column::Deleted.eq(false))
    };
    if let Some(c) = find().one(db).await? {
        return Ok(ChannelId(c.id));
    }
    let res = channel::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(team_id.0),
        chatbot_id: Set(None),
        platform: Set(Platform::Api.as_str().into()),
        name: Set("API".into()),
        config: Set(json!({})),
        secret: Set(None),
        enabled: Set(true),
        disabled_message: Set(None),
        deleted: Set(false),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(db)
    .await;
    match res {
        Ok(c) => Ok(ChannelId(c.id)),
        Err(e) if API_CHANNEL.violated_by(&e) => find()
            .one(db)
            .await?
            .map(|c| ChannelId(c.id))
            .ok_or_else(|| Error::internal("api channel vanished after a conflict")),
        Err(e) => Err(e.into()),
    }
}

/// A live channel of a chatbot family on a platform: (id, enabled).
pub async fn family_channel(
    db: &impl Reads,
    family_id: ChatbotId,
    platform: Platform,
) -> Result<Option<(ChannelId, bool)>> {
    Ok(channel::Entity::find()
        .filter(channel::Column::ChatbotId.eq(family_id))
        .filter(channel::Column::Platform.eq(platform))
        .filter(channel::Column::Deleted.eq(false))
        .one(db.reader())
        .await?
        .map(|c| (ChannelId(c.id), c.enabled)))
}

/// Accepts an inbound event once: `false` when it was seen before.
pub async fn first_time<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    channel_id: ChannelId,
    event_id: &str,
) -> Result<bool> {
    let stmt = Query::insert()
        .into_table("inbound_events")
        .columns(["channel_id", "event_id", "created_at"])
        .values_panic([channel_id.0.into(), event_id.into(), store::now().into()])
        .on_conflict(
            OnConflict::columns(["channel_id", "event_id"])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    Ok(db.execute(&stmt).await?.rows_affected() == 1)
}
