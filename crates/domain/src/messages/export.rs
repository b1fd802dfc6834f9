//! The messages of a filtered set of sessions, a page of sessions at a time,
//! for the console's CSV export: five queries per page whatever its size.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use store::entity::message;

use crate::pagination::PageRequest;
use crate::sessions::listing::{self, Filter};
use crate::{Domain, Result, TeamId, tags};

/// One exported message with its session's facts.
#[derive(Debug, Clone)]
pub struct Row {
    pub session: String,
    pub chatbot: String,
    pub participant: String,
    pub platform: String,
    pub session_status: String,
    pub session_tags: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub role: String,
    pub content: String,
    pub message_tags: Vec<String>,
}

/// Sessions exported per page.
pub const PAGE_SIZE: u64 = 500;

/// One page of sessions' messages (sessions newest first, messages in
/// order), and the cursor of the next page.
pub async fn page(
    domain: &Domain,
    team_id: TeamId,
    filter: &Filter,
    cursor: Option<String>,
) -> Result<(Vec<Row>, Option<String>)> {
    let req = PageRequest {
        // A present cursor parameter skips the count, which an export never shows.
        cursor: Some(cursor.unwrap_or_default()),
        page_size: Some(PAGE_SIZE.to_string()),
    };
    let sessions = listing::list(domain, team_id, filter, &req, listing::Counting::Exact).await?;
    let ids: Vec<i64> = sessions.items.iter().map(|s| s.id.0).collect();
    let msgs = message::Entity::find()
        .filter(message::Column::TeamId.eq(team_id))
        .filter(message::Column::SessionId.is_in(ids.clone()))
        .order_by_asc(message::Column::CreatedAt)
        .order_by_asc(message::Column::Id)
        .all(&domain.db.read)
        .await?;
    let msg_ids: Vec<i64> = msgs.iter().map(|m| m.id).collect();
    let mut msg_tags = tags::message_tag_names(domain, &msg_ids).await?;
    let mut by_session: HashMap<i64, Vec<message::Model>> = HashMap::new();
    for m in msgs {
        by_session.entry(m.session_id).or_default().push(m);
    }
    let mut rows = Vec::new();
    for s in &sessions.items {
        for m in by_session.remove(&s.id.0).unwrap_or_default() {
            rows.push(Row {
                session: s.external_id.clone(),
                chatbot: s.experiment.name.clone(),
                participant: s.participant_identifier.clone(),
                platform: s
                    .platform
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                session_status: s.status.as_str().to_string(),
                session_tags: s.tags.clone(),
                created_at: m.created_at,
                message_tags: msg_tags.remove(&m.id).unwrap_or_default(),
                role: m.role,
                content: m.content,
            });
        }
    }
    Ok((rows, sessions.next))
}
