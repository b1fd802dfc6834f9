//! Sessions as the management API shows them: lists with filters, the
//! summary and the detail with its transcript and usage. Every read is a
//! fixed number of queries whatever the page size or transcript length.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use store::entity::{chatbot, message, participant, session, team};
use uuid::Uuid;

pub use crate::messages::transcript::{Attachment, TranscriptMessage};

use super::{NOT_FOUND, SessionStatus};
use crate::channels::Platform;
use crate::conn::{Reads, Writes};
use crate::ids::{SessionId, TeamId};
use crate::messages::transcript;
use crate::pagination::{self, Listing, Order, Page, PageRequest, Position};
use crate::text_enum::stored;
use crate::{Domain, Error, Result, tags, turns};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub experiment: Option<Uuid>,
    pub tags: Vec<String>,
    pub versions: Vec<String>,
    pub order: Option<Order>,
    pub status: Option<SessionStatus>,
    pub platform: Option<Platform>,
    /// The participant's identifier, exactly (as the platform names them).
    pub participant: Option<String>,
    /// Started at or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Started before.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone)]
pub struct ExperimentStub {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub version_number: i32,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub id: SessionId,
    pub external_id: String,
    pub team_name: String,
    pub team_slug: String,
    pub experiment: ExperimentStub,
    pub participant_identifier: String,
    pub participant_remote_id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub status: SessionStatus,
    pub platform: Option<Platform>,
    pub tags: Vec<String>,
    pub state: Value,
}

#[derive(Debug, Clone)]
pub struct Detail {
    pub summary: Summary,
    pub messages: Vec<TranscriptMessage>,
    pub total_cost_e8: i64,
    /// (model, cost e8, tokens), most expensive first.
    pub by_model: Vec<(String, i64, i64)>,
}

/// Builds summaries for session rows: four queries for any number of rows.
async fn summarize<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    rows: Vec<session::Model>,
) -> Result<Vec<Summary>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let team = team::Entity::find_by_id(team_id.0)
        .one(db)
        .await?
        .ok_or_else(|| Error::internal("team vanished"))?;
    let bot_ids: Vec<i64> = rows.iter().map(|r| r.chatbot_id).collect();
    let bots: HashMap<i64, chatbot::Model> = chatbot::Entity::find()
        .filter(chatbot::Column::Id.is_in(bot_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|b| (b.id, b))
        .collect();
    let part_ids: Vec<i64> = rows.iter().map(|r| r.participant_id).collect();
    let parts: HashMap<i64, participant::Model> = participant::Entity::find()
        .filter(participant::Column::Id.is_in(part_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut tag_names = tags::session_tag_names(db, &ids).await?;
    rows.into_iter()
        .map(|r| {
            let bot = bots
                .get(&r.chatbot_id)
                .ok_or_else(|| Error::internal(format!("session {} has no chatbot", r.id)))?;
            let p = parts
                .get(&r.participant_id)
                .ok_or_else(|| Error::internal(format!("session {} has no participant", r.id)))?;
            Ok(Summary {
                id: SessionId(r.id),
                tags: tag_names.remove(&r.id).unwrap_or_default(),
                state: serde_json::from_str(&r.state).unwrap_or_else(|_| json!({})),
                external_id: r.external_id,
                team_name: team.name.clone(),
                team_slug: team.slug.clone(),
                experiment: ExperimentStub {
                    id: bot.public_id,
                    name: bot.name.clone(),
                    description: bot.description.clone(),
                    version_number: bot.version_number,
                },
                participant_identifier: p.identifier.clone(),
                participant_remote_id: p.remote_id.clone(),
                created_at: r.created_at,
                updated_at: r.updated_at,
                status: stored(&r.status)?,
                platform: r.platform.as_deref().map(stored).transpose()?,
            })
        })
        .collect()
}

/// A page of the team's sessions. Tag filters use subqueries, so a session
/// carrying several of the listed tags appears (and counts) once.
pub async fn list(
    domain: &Domain,
    team_id: TeamId,
    filter: &Filter,
    req: &PageRequest,
) -> Result<Page<Summary>> {
    let db = &domain.db.read;
    let mut q = session::Entity::find().filter(session::Column::TeamId.eq(team_id));
    if let Some(exp) = filter.experiment {
        let rows: Vec<i64> = chatbot::Entity::find()
            .filter(chatbot::Column::TeamId.eq(team_id))
            .filter(chatbot::Column::PublicId.eq(exp))
            .all(db)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        q = q.filter(session::Column::ChatbotId.is_in(rows));
    }
    if !filter.tags.is_empty() {
        q = q.filter(
            session::Column::Id.in_subquery(tags::sessions_with_tags(team_id, &filter.tags)),
        );
    }
    if !filter.versions.is_empty() {
        q = q.filter(
            session::Column::Id
                .in_subquery(tags::sessions_with_version_tags(team_id, &filter.versions)),
        );
    }
    if let Some(status) = filter.status {
        q = q.filter(session::Column::Status.eq(status));
    }
    if let Some(platform) = filter.platform {
        q = q.filter(session::Column::Platform.eq(platform));
    }
    if let Some(who) = &filter.participant {
        q = q.filter(
            session::Column::ParticipantId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(participant::Column::Id)
                    .from(participant::Entity)
                    .and_where(participant::Column::TeamId.eq(team_id))
                    .and_where(participant::Column::Identifier.eq(who.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(since) = filter.since {
        q = q.filter(session::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        q = q.filter(session::Column::CreatedAt.lt(until));
    }
    let listing = Listing::<session::Entity> {
        kind: "sessions",
        order: filter.order.unwrap_or(Order::Desc),
        created_at: session::Column::CreatedAt,
        id: session::Column::Id,
    };
    let page = pagination::paginate(db, &domain.cursors, &listing, q, req, |m| Position {
        created_at: m.created_at,
        id: m.id,
    })
    .await?;
    let (next, previous, count) = (page.next, page.previous, page.count);
    let items = summarize(db, team_id, page.items).await?;
    Ok(Page {
        items,
        next,
        previous,
        count,
    })
}

async fn row<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    external_id: &str,
) -> Result<session::Model> {
    session::Entity::find()
        .filter(session::Column::TeamId.eq(team_id))
        .filter(session::Column::ExternalId.eq(external_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(NOT_FOUND))
}

pub async fn summary(domain: &Domain, team_id: TeamId, external_id: &str) -> Result<Summary> {
    let db = &domain.db.read;
    let r = row(db, team_id, external_id).await?;
    summarize(db, team_id, vec![r])
        .await?
        .pop()
        .ok_or_else(|| Error::not_found(NOT_FOUND))
}

/// The session with its transcript (oldest first, summary checkpoints shown as
/// system messages just before the message they precede) and its usage.
pub async fn detail(domain: &Domain, team_id: TeamId, external_id: &str) -> Result<Detail> {
    let db = &domain.db.read;
    let r = row(db, team_id, external_id).await?;
    let session_id = SessionId(r.id);
    let summary = summarize(db, team_id, vec![r])
        .await?
        .pop()
        .ok_or_else(|| Error::not_found(NOT_FOUND))?;
    let msgs = message::Entity::find()
        .filter(message::Column::SessionId.eq(session_id))
        .order_by_asc(message::Column::CreatedAt)
        .order_by_asc(message::Column::Id)
        .all(db)
        .await?;
    let messages = transcript::build(db, team_id, session_id, msgs).await?;
    let (total, mut by_model) = turns::session_usage(db, session_id).await?;
    by_model.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Detail {
        summary,
        messages,
        total_cost_e8: total,
        by_model,
    })
}
