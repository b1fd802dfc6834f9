//! Which version of a chatbot a session's own happenings use (its start and
//! end, its consent, seed message and allowlist): read straight from the rows,
//! so the modules that ask (triggers, onboarding, channels) need not depend on
//! the chatbot service itself.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use store::entity::chatbot;

use crate::Result;
use crate::conn::Reads;
use crate::ids::ChatbotId;

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
