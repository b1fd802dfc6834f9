//! Any version's configuration, to compare two versions or to roll the
//! working version back to a numbered one (the numbered versions themselves
//! never change).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use store::entity::chatbot;

use crate::{Error, Result, TeamId};

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
