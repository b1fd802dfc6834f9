//! A chatbot's versions as configurations: which version a session's own
//! happenings use (its start and end, its consent, seed message and
//! allowlist), read straight from the rows so the modules that ask
//! (triggers, onboarding, channels) need not depend on the chatbot service;
//! and any version's configuration, to compare two or to roll back to one.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use store::entity::chatbot;

use crate::conn::Reads;
use crate::ids::ChatbotId;
use crate::{Error, Result, TeamId};

/// The version of a chatbot that a session's own happenings (its start and
/// end, its consent, seed message and allowlist) use.
#[derive(Debug, Clone)]
pub struct SessionVersion {
    /// The version row whose configuration applies.
    pub row: ChatbotId,
    /// The chatbot family (its working version's row).
    pub family: ChatbotId,
    pub config: Value,
}

/// The published version of the session's chatbot, else its working
/// version; a session bound to a snapshot uses that snapshot.
pub async fn session_version(
    db: &impl Reads,
    chatbot_row: ChatbotId,
) -> Result<Option<SessionVersion>> {
    let db = db.reader();
    let Some(row) = chatbot::Entity::find_by_id(chatbot_row.0).one(db).await? else {
        return Ok(None);
    };
    let family = ChatbotId(row.working_version_id.unwrap_or(row.id));
    if row.working_version_id.is_some() {
        return Ok(Some(SessionVersion {
            row: ChatbotId(row.id),
            family,
            config: row.config,
        }));
    }
    let published = chatbot::Entity::find()
        .filter(chatbot::Column::WorkingVersionId.eq(row.id))
        .filter(chatbot::Column::IsDefaultVersion.eq(true))
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?;
    let (id, config) = match published {
        Some(p) => (p.id, p.config),
        None => (row.id, row.config),
    };
    Ok(Some(SessionVersion {
        row: ChatbotId(id),
        family,
        config,
    }))
}

/// Which configuration: the working version, or a numbered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Working,
    Number(i32),
}

impl std::str::FromStr for Which {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "" | "working" => Ok(Which::Working),
            n => n
                .trim_start_matches('v')
                .parse()
                .map(Which::Number)
                .map_err(|_| Error::BadRequest(format!("{n:?} is not a version"))),
        }
    }
}

/// The configuration of one version of a team's chatbot.
pub async fn config_of(
    db: &impl crate::conn::Writes,
    team_id: TeamId,
    id: uuid::Uuid,
    which: Which,
) -> Result<Value> {
    let db = db.writer();
    let head = crate::chatbots::head_row(db, team_id, id).await?;
    match which {
        Which::Working => Ok(head.config),
        Which::Number(n) => chatbot::Entity::find()
            .filter(chatbot::Column::WorkingVersionId.eq(head.id))
            .filter(chatbot::Column::VersionNumber.eq(n))
            .filter(chatbot::Column::IsArchived.eq(false))
            .one(db)
            .await?
            .map(|v| v.config)
            .ok_or_else(|| Error::not_found(format!("the chatbot has no version {n}"))),
    }
}

/// Rolls back: copies a numbered version's configuration into the working
/// version (the numbered versions stay as they are).
pub async fn restore(
    db: &impl crate::conn::Writes,
    team_id: TeamId,
    id: uuid::Uuid,
    number: i32,
) -> Result<crate::chatbots::Chatbot> {
    let config = config_of(db, team_id, id, Which::Number(number)).await?;
    let head = crate::chatbots::get(db.writer(), team_id, id).await?;
    crate::chatbots::update_working(db, team_id, id, &head.name, None, Some(config)).await
}
