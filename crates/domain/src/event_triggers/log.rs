//! The events log: the firings of a chatbot's triggers, read back from
//! their `event.fire` jobs (status, attempts, what each did or its error).

use serde::Serialize;

use super::family_rows;
use crate::ids::{ChatbotId, TeamId};
use crate::jobs::{EventFire, EventFirePayload};
use crate::{Error, Result};

/// One firing in the events log.
#[derive(Debug, Clone, Serialize)]
pub struct Firing {
    pub task_id: uuid::Uuid,
    pub session: String,
    pub on: String,
    pub action: String,
    /// `queued`, `running`, `succeeded`, `failed` or `dead`.
    pub status: String,
    pub attempts: i32,
    /// What the action did, once it did.
    pub done: Option<String>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The newest firings of a chatbot's triggers (all its versions), newest first.
pub async fn log(
    db: &impl crate::conn::Reads,
    team_id: TeamId,
    chatbot_id: uuid::Uuid,
    limit: u64,
) -> Result<Vec<Firing>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    use store::entity::{chatbot, job, session};
    let db = db.reader();
    let row = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::PublicId.eq(chatbot_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("No chatbot has this id in the team."))?;
    let family = ChatbotId(row.working_version_id.unwrap_or(row.id));
    let sessions: Vec<(i64, String)> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .column(session::Column::ExternalId)
        .filter(session::Column::ChatbotId.in_subquery(family_rows(family)))
        .into_tuple()
        .all(db)
        .await?;
    let names: std::collections::HashMap<i64, String> = sessions.iter().cloned().collect();
    let jobs = job::Entity::find()
        .filter(job::Column::Kind.eq(<EventFire as crate::jobs::JobKind>::KIND))
        .filter(job::Column::TeamId.eq(team_id))
        .filter(job::Column::SessionId.is_in(sessions.iter().map(|(id, _)| *id)))
        .order_by_desc(job::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(jobs
        .into_iter()
        .map(|j| {
            let p: Option<EventFirePayload> = serde_json::from_value(j.payload.clone()).ok();
            let done = j
                .result
                .clone()
                .and_then(|r| serde_json::from_value::<crate::jobs::EventFired>(r).ok())
                .map(|r| r.done);
            Firing {
                task_id: j.task_id,
                session: j
                    .session_id
                    .and_then(|s| names.get(&s).cloned())
                    .unwrap_or_default(),
                on: p.as_ref().map(|p| p.on.clone()).unwrap_or_default(),
                action: p
                    .as_ref()
                    .map(|p| p.action.kind().to_string())
                    .unwrap_or_default(),
                status: j.status,
                attempts: j.attempts,
                done,
                last_error: j.last_error,
                created_at: j.created_at,
                finished_at: j.finished_at,
            }
        })
        .collect())
}
