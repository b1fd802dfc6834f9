//! Sessions as the management API shows them: lists with filters, the
//! summary and the detail with its transcript and usage. Every read is a
//! fixed number of queries whatever the page size or transcript length.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use serde_json::{Value, json};
use store::entity::{chatbot, message, participant, session, team};
use uuid::Uuid;

pub use crate::messages::transcript::{Attachment, TranscriptMessage};

use super::{NOT_FOUND, SessionStatus, counts};
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

/// How a first page counts a filter the session counters cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Every matching session (the API: its `count` is the total).
    Exact,
    /// Up to this many; beyond it the page says there are more (the console:
    /// a person reads "more than 10000" as well as the number, and a wide
    /// filter then costs a bounded scan).
    UpTo(u64),
}

/// What the console counts up to for the filters the counters cannot answer.
pub const CONSOLE_COUNT_LIMIT: u64 = 10_000;

impl Filter {
    /// Whether the session counters answer this filter's count exactly: no
    /// filter, or any of chatbot, status and channel (the counters' grain).
    /// Tags, versions, participant and days are counted from the sessions.
    pub fn counted_by_counters(&self) -> bool {
        self.tags.is_empty()
            && self.versions.is_empty()
            && self.participant.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// Tags and nothing else: counted from the tags' rows alone.
    fn only_tags(&self) -> bool {
        !self.tags.is_empty()
            && self.versions.is_empty()
            && self.experiment.is_none()
            && self.status.is_none()
            && self.platform.is_none()
            && self.participant.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }
}

/// Tag and version filters that match at most this many rows are read as
/// their sessions' ids first, so the page looks those sessions up by key
/// rather than walking the team's list for the few that carry them.
const FEW_TAGGED: u64 = 1000;

/// A filter's names resolved to row ids.
struct Resolved {
    /// The chatbot filter's rows.
    bots: Option<Vec<i64>>,
    /// The participant filter's participants.
    participants: Option<Vec<i64>>,
    /// The sessions the tag and version filters allow, when they are few.
    few: Option<Vec<i64>>,
    /// The tag and version filters matching more, as subqueries.
    many: Vec<SelectStatement>,
    /// The tag filter's tags.
    tag_ids: Vec<i64>,
}

impl Resolved {
    async fn of<C: ConnectionTrait>(db: &C, team_id: TeamId, filter: &Filter) -> Result<Self> {
        let mut r = Resolved {
            bots: None,
            participants: None,
            few: None,
            many: Vec::new(),
            tag_ids: Vec::new(),
        };
        if let Some(exp) = filter.experiment {
            r.bots = Some(
                chatbot::Entity::find()
                    .select_only()
                    .column(chatbot::Column::Id)
                    .filter(chatbot::Column::TeamId.eq(team_id))
                    .filter(chatbot::Column::PublicId.eq(exp))
                    .into_tuple()
                    .all(db)
                    .await?,
            );
        }
        if let Some(who) = &filter.participant {
            // Values, not a subquery: SQLite, which keeps no statistics,
            // walks the whole team in list order for a subquery's few
            // participants, where values read one range of
            // sessions_team_participant_idx each.
            r.participants = Some(
                participant::Entity::find()
                    .select_only()
                    .column(participant::Column::Id)
                    .filter(participant::Column::TeamId.eq(team_id))
                    .filter(participant::Column::Identifier.eq(who.as_str()))
                    .into_tuple()
                    .all(db)
                    .await?,
            );
        }
        if !filter.tags.is_empty() {
            r.tag_ids = tags::ids_named(db, team_id, &filter.tags).await?;
        }
        let tagged = [
            (!filter.tags.is_empty()).then(|| tags::sessions_with_tag_ids(team_id, &r.tag_ids)),
            (!filter.versions.is_empty())
                .then(|| tags::sessions_with_version_tags(team_id, &filter.versions)),
        ];
        for sub in tagged.into_iter().flatten() {
            // Rows, not distinct sessions (a hashed DISTINCT would read all
            // of a large tag's rows before the limit): a session tagged
            // twice counts twice toward the bound, never toward the result.
            let first = sub.clone().limit(FEW_TAGGED + 1).to_owned();
            let ids: Vec<i64> = db
                .query_all(&first)
                .await?
                .iter()
                .map(|row| row.try_get_by_index::<i64>(0))
                .collect::<Result<_, _>>()?;
            if u64::try_from(ids.len()).unwrap_or(u64::MAX) > FEW_TAGGED {
                r.many.push(sub);
                continue;
            }
            let ids: HashSet<i64> = ids.into_iter().collect();
            r.few = Some(match r.few.take() {
                None => ids.into_iter().collect(),
                Some(mut both) => {
                    both.retain(|id| ids.contains(id));
                    both
                }
            });
        }
        Ok(r)
    }

    /// The sessions the filter selects, reached as `access` says.
    fn select(
        &self,
        team_id: TeamId,
        filter: &Filter,
        access: Access,
    ) -> sea_orm::Select<session::Entity> {
        let col = |c: session::Column| -> Expr {
            let c = Expr::col((session::Entity, c));
            match access {
                Access::Team => c,
                Access::Keys => c.add(0),
            }
        };
        let mut q = session::Entity::find().filter(col(session::Column::TeamId).eq(team_id.0));
        if let Some(rows) = &self.bots {
            q = q.filter(col(session::Column::ChatbotId).is_in(rows.iter().copied()));
        }
        if let Some(ids) = &self.few {
            q = q.filter(session::Column::Id.is_in(ids.iter().copied()));
        }
        for sub in &self.many {
            q = q.filter(session::Column::Id.in_subquery(sub.clone()));
        }
        if let Some(status) = filter.status {
            q = q.filter(session::Column::Status.eq(status));
        }
        if let Some(platform) = filter.platform {
            q = q.filter(session::Column::Platform.eq(platform));
        }
        if let Some(ids) = &self.participants {
            q = q.filter(col(session::Column::ParticipantId).is_in(ids.iter().copied()));
        }
        if let Some(since) = filter.since {
            q = q.filter(session::Column::CreatedAt.gte(since));
        }
        if let Some(until) = filter.until {
            q = q.filter(session::Column::CreatedAt.lt(until));
        }
        q
    }
}

/// How a query reaches the sessions it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Through the team's indexes: the list's order, or a filter's range.
    Team,
    /// By key, from the sessions the tag and version filters name: team,
    /// chatbot and participant are compared as `column + 0`, which no index
    /// serves, so neither planner walks a team index instead (SQLite,
    /// without statistics, takes any index on the team as selective).
    Keys,
}

/// A page of the team's sessions. Tag filters use subqueries, so a session
/// carrying several of the listed tags appears (and counts) once. The first
/// page's count sums the session counters when they answer the filter
/// ([`Filter::counted_by_counters`]), else counts the sessions as `counting`
/// says.
pub async fn list(
    domain: &Domain,
    team_id: TeamId,
    filter: &Filter,
    req: &PageRequest,
    counting: Counting,
) -> Result<Page<Summary>> {
    let db = &domain.db.read;
    let r = Resolved::of(db, team_id, filter).await?;
    let page_access = if r.few.is_some() {
        Access::Keys
    } else {
        Access::Team
    };
    let listing = Listing::<session::Entity> {
        kind: "sessions",
        order: filter.order.unwrap_or(Order::Desc),
        created_at: session::Column::CreatedAt,
        id: session::Column::Id,
    };
    let limit = match counting {
        Counting::Exact => None,
        Counting::UpTo(n) => Some(n),
    };
    let (count, count_capped) = if !req.wants_count() {
        (None, false)
    } else if filter.counted_by_counters() {
        let n = counts::total(
            db,
            team_id,
            r.bots.as_deref(),
            filter.status,
            filter.platform,
        )
        .await?;
        (Some(n), false)
    } else if r.few.is_none() && filter.only_tags() {
        // The tag rows carry the team and go with their session: counting
        // them reads one index range and no session.
        let mut tagged = tags::sessions_with_tag_ids(team_id, &r.tag_ids);
        tagged.distinct();
        let (n, capped) = count_of(db, tagged, limit).await?;
        (Some(n), capped)
    } else {
        // Many tagged sessions and more filters: from the tagged sessions
        // by key still (a participant's own range is smaller).
        let access = if r.few.is_some() || (!r.many.is_empty() && r.participants.is_none()) {
            Access::Keys
        } else {
            Access::Team
        };
        let ids = r
            .select(team_id, filter, access)
            .select_only()
            .column(session::Column::Id)
            .into_query();
        let (n, capped) = count_of(db, ids, limit).await?;
        (Some(n), capped)
    };
    let q = r.select(team_id, filter, page_access);
    let page = pagination::rows(db, &domain.cursors, &listing, q, req, |m| Position {
        created_at: m.created_at,
        id: m.id,
    })
    .await?;
    let (next, previous) = (page.next, page.previous);
    let items = summarize(db, team_id, page.items).await?;
    Ok(Page {
        items,
        next,
        previous,
        count,
        count_capped,
    })
}

/// The rows `q` selects, counted to `limit` at most: `(limit, true)` when
/// there are more.
async fn count_of<C: ConnectionTrait>(
    db: &C,
    mut q: SelectStatement,
    limit: Option<u64>,
) -> Result<(u64, bool)> {
    if let Some(n) = limit {
        // One more than the limit, to know there are more.
        q.limit(n + 1);
    }
    let stmt = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(q, "counted")
        .to_owned();
    let n: i64 = db
        .query_one(&stmt)
        .await?
        .ok_or_else(|| Error::internal("COUNT(*) gave no row"))?
        .try_get_by_index(0)?;
    let n = u64::try_from(n).unwrap_or(0);
    Ok(match limit {
        Some(cap) if n > cap => (cap, true),
        _ => (n, false),
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
