//! Channels: a chatbot's deployments on platforms (Telegram, the web widget,
//! the team-wide API channel), and the inbound events they accept once.

pub mod push;
pub mod telegram;
pub mod whatsapp;
pub mod widget;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;
use store::constraints::API_CHANNEL;
use store::entity::{channel, chatbot};
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
        /// Text messages through Twilio (not one of the original's platforms,
        /// so the API's platform choices leave it out).
        Sms = "sms",
    }
);

impl Platform {
    /// A platform the contract's `PlatformEnum` names: what API requests may choose.
    pub fn from_api(name: &str) -> Option<Self> {
        Self::parse(name).filter(|p| *p != Platform::Sms)
    }

    /// One spelling per identity, so a participant is the same row however
    /// they were named: CommCare Connect ids compare case-insensitively
    /// (stored lowercased); WhatsApp phone numbers are stored in E.164 with
    /// the `+` (Meta and Turn send `27…`, Twilio `+27…`, the participants API
    /// either), while Meta's business-scoped user ids stay as they are.
    pub fn normalize_identifier(self, identifier: &str) -> String {
        match self {
            Platform::CommcareConnect => identifier.to_lowercase(),
            Platform::Whatsapp | Platform::Sms => {
                let id = identifier.trim();
                let digits = id.strip_prefix('+').unwrap_or(id);
                if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                    format!("+{digits}")
                } else {
                    id.to_string()
                }
            }
            _ => identifier.to_string(),
        }
    }
}

/// The working version row of a live chatbot, which channels belong to.
pub(crate) async fn family_head(
    db: &impl ConnectionTrait,
    chatbot_id: Uuid,
) -> Result<chatbot::Model> {
    chatbot::Entity::find()
        .filter(chatbot::Column::PublicId.eq(chatbot_id))
        .filter(chatbot::Column::WorkingVersionId.is_null())
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("no chatbot with id {chatbot_id}")))
}

/// The team-wide `api` channel, created on first use.
pub async fn api_channel(db: &(impl Reads + Writes), team_id: TeamId) -> Result<ChannelId> {
    let find = || {
        channel::Entity::find()
            .filter(channel::Column::TeamId.eq(team_id))
            .filter(channel::Column::Platform.eq(Platform::Api))
            .filter(channel::Column::Deleted.eq(false))
    };
    // It exists after the team's first API turn: read it off the writer.
    if let Some(c) = find().one(db.reader()).await? {
        return Ok(ChannelId(c.id));
    }
    let db = db.writer();
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
    crate::conn::insert_new(
        db,
        "inbound_events",
        [
            ("channel_id", channel_id.0.into()),
            ("event_id", event_id.into()),
            ("created_at", store::now().into()),
        ],
        ["channel_id", "event_id"],
    )
    .await
}

/// A live channel of a chatbot (any platform), by its public id.
async fn live<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<channel::Model> {
    channel::Entity::find()
        .filter(channel::Column::PublicId.eq(id))
        .filter(channel::Column::ChatbotId.is_not_null())
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("no channel with id {id}")))
}

/// One of a chatbot's channels, as a list of them shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: Uuid,
    pub platform: String,
    pub name: String,
    pub enabled: bool,
    pub disabled_message: Option<String>,
    /// The number or address it answers on (WhatsApp, SMS).
    pub address: Option<String>,
    /// A widget's allowed page hosts.
    pub allowed_domains: Vec<String>,
    /// What admits a widget's chats (none for other platforms).
    pub credential_mode: Option<widget::CredentialMode>,
}

/// Every live channel of a team's chatbot (any platform), oldest first.
pub async fn of_chatbot(db: &impl Reads, team_id: TeamId, chatbot: Uuid) -> Result<Vec<Listed>> {
    let db = db.reader();
    let head = family_head(db, chatbot).await?;
    if head.team_id != team_id.0 {
        return Err(Error::not_found(format!("no chatbot with id {chatbot}")));
    }
    Ok(channel::Entity::find()
        .filter(channel::Column::ChatbotId.eq(head.id))
        .filter(channel::Column::Deleted.eq(false))
        .order_by_asc(channel::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|m| Listed {
            credential_mode: (m.platform == widget::PLATFORM.as_str())
                .then(|| widget::credential_mode(&m.config)),
            allowed_domains: m
                .config
                .get("allowed_domains")
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            id: m.public_id,
            platform: m.platform,
            name: m.name,
            enabled: m.enabled,
            disabled_message: m.disabled_message,
            address: m.address,
        })
        .collect())
}

/// Turns a channel on or off; `message` is what participants are told
/// while it is off (the widget shows it; push channels send it).
pub async fn set_enabled(
    db: &impl Writes,
    id: Uuid,
    enabled: bool,
    message: Option<String>,
) -> Result<()> {
    let db = db.writer();
    let m = live(db, id).await?;
    let mut am: channel::ActiveModel = m.into();
    am.enabled = Set(enabled);
    if message.is_some() || enabled {
        am.disabled_message = Set(message);
    }
    am.update(db).await?;
    Ok(())
}

/// Removes a channel (soft delete): its key stops working everywhere.
pub async fn remove(db: &impl Writes, id: Uuid) -> Result<()> {
    let db = db.writer();
    live(db, id).await?;
    channel::Entity::update_many()
        .col_expr(channel::Column::Deleted, Expr::value(true))
        .col_expr(
            channel::Column::KeyHash,
            Expr::value(Option::<String>::None),
        )
        .filter(channel::Column::PublicId.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
