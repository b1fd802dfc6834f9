//! Sessions as the management API shows them: lists with filters, the detail
//! with its transcript and usage, creation with seeded messages, ending,
//! tags and state. Every read is a fixed number of queries whatever the page
//! size or transcript length.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde_json::{Value, json};
use store::entity::{chatbot, file, message, participant, session, session_file, team};
use uuid::Uuid;

use crate::conversations::{self as conv, NewSession, role, status};
use crate::pagination::{self, Listing, Order, Page, PageRequest, Position};
use crate::{Domain, Error, Result, tags};

pub const NOT_FOUND: &str = "No ExperimentSession matches the given query.";

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub experiment: Option<Uuid>,
    pub tags: Vec<String>,
    pub versions: Vec<String>,
    pub order: Option<Order>,
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
    pub id: i64,
    pub external_id: String,
    pub team_name: String,
    pub team_slug: String,
    pub experiment: ExperimentStub,
    pub participant_identifier: String,
    pub participant_remote_id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub status: String,
    pub platform: Option<String>,
    pub tags: Vec<String>,
    pub state: Value,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub size: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct TranscriptMessage {
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// `user`, `assistant` or `system`.
    pub role: String,
    pub content: String,
    pub metadata: Value,
    pub tags: Vec<String>,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone)]
pub struct Detail {
    pub summary: Summary,
    pub messages: Vec<TranscriptMessage>,
    pub total_cost_e8: i64,
    /// (model, cost e8, tokens), most expensive first.
    pub by_model: Vec<(String, i64, i64)>,
}

/// Metadata keys internal to the original's OpenAI Assistants support, never shown.
const HIDDEN_METADATA: &[&str] = &[
    "openai_run_id",
    "openai_file_ids",
    "openai_thread_checkpoint",
];
/// Metadata keys that reference attached files by id.
const FILE_REF_KEYS: &[&str] = &["ocs_attachment_file_ids", "cited_files", "generated_files"];

/// Builds summaries for session rows: four queries for any number of rows.
async fn summarize<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    rows: Vec<session::Model>,
) -> Result<Vec<Summary>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let team = team::Entity::find_by_id(team_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("team vanished".into()))?;
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
                .ok_or_else(|| Error::Internal(format!("session {} has no chatbot", r.id)))?;
            let p = parts
                .get(&r.participant_id)
                .ok_or_else(|| Error::Internal(format!("session {} has no participant", r.id)))?;
            Ok(Summary {
                id: r.id,
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
                status: r.status,
                platform: r.platform,
            })
        })
        .collect()
}

/// A page of the team's sessions. Tag filters use subqueries, so a session
/// carrying several of the listed tags appears (and counts) once.
pub async fn list(
    domain: &Domain,
    team_id: i64,
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

async fn row<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    external_id: &str,
) -> Result<session::Model> {
    session::Entity::find()
        .filter(session::Column::TeamId.eq(team_id))
        .filter(session::Column::ExternalId.eq(external_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(NOT_FOUND))
}

/// Whether a session exists in the team (the session actions' 404 check).
pub async fn exists<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    external_id: &str,
) -> Result<Option<i64>> {
    Ok(session::Entity::find()
        .filter(session::Column::TeamId.eq(team_id))
        .filter(session::Column::ExternalId.eq(external_id))
        .one(db)
        .await?
        .map(|s| s.id))
}

pub async fn summary(domain: &Domain, team_id: i64, external_id: &str) -> Result<Summary> {
    let db = &domain.db.read;
    let r = row(db, team_id, external_id).await?;
    summarize(db, team_id, vec![r])
        .await?
        .pop()
        .ok_or_else(|| Error::not_found(NOT_FOUND))
}

fn file_refs(metadata: &Value) -> Vec<i64> {
    FILE_REF_KEYS
        .iter()
        .filter_map(|k| metadata.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .collect()
}

/// The session with its transcript (oldest first, summary checkpoints shown as
/// system messages just before the message they precede) and its usage.
pub async fn detail(domain: &Domain, team_id: i64, external_id: &str) -> Result<Detail> {
    let db = &domain.db.read;
    let r = row(db, team_id, external_id).await?;
    let session_id = r.id;
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
    let messages = transcript(db, team_id, session_id, msgs).await?;
    let (total, mut by_model) = conv::session_usage(db, session_id).await?;
    by_model.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Detail {
        summary,
        messages,
        total_cost_e8: total,
        by_model,
    })
}

/// Transcript entries for stored messages: tags and attachments in two
/// queries, summary checkpoints shown as system messages before their message.
pub async fn transcript<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    session_id: i64,
    msgs: Vec<message::Model>,
) -> Result<Vec<TranscriptMessage>> {
    let ids: Vec<i64> = msgs.iter().map(|m| m.id).collect();
    let mut msg_tags = tags::message_tag_names(db, &ids).await?;
    // Files a message references that are also attached to this session.
    let attached: HashMap<i64, Attachment> = file::Entity::find()
        .filter(file::Column::TeamId.eq(team_id))
        .filter(file::Column::IsArchived.eq(false))
        .filter(
            file::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(session_file::Column::FileId)
                    .from(session_file::Entity)
                    .and_where(Expr::col(session_file::Column::SessionId).eq(session_id))
                    .to_owned(),
            ),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|f| {
            (
                f.id,
                Attachment {
                    id: f.id,
                    name: f.name,
                    content_type: f.content_type,
                    size: f.size,
                },
            )
        })
        .collect();
    let mut messages = Vec::with_capacity(msgs.len());
    for m in msgs {
        if let Some(s) = m.summary.as_deref().filter(|s| !s.is_empty()) {
            messages.push(TranscriptMessage {
                created_at: m.created_at,
                role: "system".into(),
                content: s.to_string(),
                metadata: json!({"compression_marker": "summarize"}),
                tags: Vec::new(),
                attachments: Vec::new(),
            });
        }
        let mut attachments: Vec<Attachment> = file_refs(&m.metadata)
            .into_iter()
            .filter_map(|id| attached.get(&id).cloned())
            .collect();
        attachments.sort_by_key(|a| a.id);
        attachments.dedup_by_key(|a| a.id);
        let mut metadata = match m.metadata {
            Value::Object(o) => o,
            _ => Default::default(),
        };
        for k in HIDDEN_METADATA {
            metadata.remove(*k);
        }
        messages.push(TranscriptMessage {
            created_at: m.created_at,
            role: match m.role.as_str() {
                role::HUMAN => "user",
                role::AI => "assistant",
                _ => "system",
            }
            .into(),
            content: m.content,
            metadata: Value::Object(metadata),
            tags: msg_tags.remove(&m.id).unwrap_or_default(),
            attachments,
        });
    }
    Ok(messages)
}

/// Messages of a session created strictly after `since`, oldest first, at most
/// `limit` (and whether more exist).
pub async fn messages_since<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    session_id: i64,
    since: Option<chrono::DateTime<chrono::Utc>>,
    limit: u64,
) -> Result<(Vec<TranscriptMessage>, bool)> {
    let mut q = message::Entity::find().filter(message::Column::SessionId.eq(session_id));
    if let Some(t) = since {
        q = q.filter(message::Column::CreatedAt.gt(t));
    }
    let mut rows = q
        .order_by_asc(message::Column::CreatedAt)
        .order_by_asc(message::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((transcript(db, team_id, session_id, rows).await?, more))
}

/// One stored message of a session, as the transcript shows it.
pub async fn message<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    session_id: i64,
    message_id: i64,
) -> Result<Option<TranscriptMessage>> {
    let rows = message::Entity::find_by_id(message_id)
        .filter(message::Column::SessionId.eq(session_id))
        .all(db)
        .await?;
    Ok(transcript(db, team_id, session_id, rows)
        .await?
        .into_iter()
        .rfind(|m| m.metadata.get("compression_marker").is_none()))
}

/// Input of `POST /api/sessions/`, already validated for shape.
#[derive(Debug, Clone)]
pub struct Create {
    pub experiment: Uuid,
    pub participant: Option<String>,
    /// (stored role, content), in order.
    pub messages: Vec<(String, String)>,
    pub state: Value,
}

/// Creates a session on the team's API channel with seeded messages, in one
/// transaction; no bot runs. A chatbot of another team is a 404; one that
/// exists nowhere is a field error (the original's distinction).
pub async fn create(
    domain: &Domain,
    team_id: i64,
    user_id: Option<i64>,
    c: Create,
) -> Result<Summary> {
    let db = &domain.db.write;
    let bot = chatbot::Entity::find()
        .filter(chatbot::Column::PublicId.eq(c.experiment))
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| {
            Error::field(
                "experiment",
                format!("Object with public_id={} does not exist.", c.experiment),
            )
        })?;
    if bot.team_id != team_id {
        return Err(Error::not_found("Experiment not found"));
    }
    let identifier = match (c.participant, user_id) {
        (Some(p), _) => p,
        (None, Some(u)) => conv::user_email(db, u).await?,
        (None, None) => {
            let mut m = serde_json::Map::new();
            m.insert("participant".into(), json!("This field is required."));
            return Err(Error::Validation(Value::Object(m)));
        }
    };
    let txn = db.begin().await?;
    let p = conv::participant_get_or_create(&txn, team_id, "api", &identifier, user_id).await?;
    let channel = conv::api_channel(&txn, team_id).await?;
    let s = conv::create_session(
        &txn,
        NewSession {
            team_id,
            participant_id: p.id,
            chatbot_row_id: bot.id,
            channel_id: Some(channel),
            platform: None,
            version_number: 0,
            state: c.state,
        },
    )
    .await?;
    for (r, content) in &c.messages {
        conv::insert_message(&txn, team_id, s.id, r, content, json!({})).await?;
    }
    txn.commit().await?;
    summary(domain, team_id, &s.external_id).await
}

/// Ends a session: `pending-review`, whatever its status; `ended_at` reset.
pub async fn end(domain: &Domain, team_id: i64, session_id: i64, ended_by: &str) -> Result<()> {
    conv::end_session(&domain.db.write, session_id, ended_by).await?;
    domain.events.emit(crate::events::Event::ConversationEnded {
        team_id,
        session_id,
        ended_by: ended_by.to_string(),
    });
    Ok(())
}

/// Replaces the session state (no merge).
pub async fn replace_state(domain: &Domain, session_id: i64, state: &Value) -> Result<()> {
    session::Entity::update_many()
        .col_expr(
            session::Column::State,
            Expr::value(strip_controls(state).to_string()),
        )
        .col_expr(session::Column::UpdatedAt, Expr::value(store::now()))
        .filter(session::Column::Id.eq(session_id))
        .exec(&domain.db.write)
        .await?;
    Ok(())
}

/// NUL and control characters (but tab, LF, CR) are removed from stored strings.
pub fn strip_controls(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(
            s.chars()
                .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_controls).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), strip_controls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// All tag names on a session, sorted.
pub async fn tag_names(domain: &Domain, session_id: i64) -> Result<Vec<String>> {
    Ok(tags::session_tag_names(&domain.db.write, &[session_id])
        .await?
        .remove(&session_id)
        .unwrap_or_default())
}

/// Sessions that are over do not take new messages.
pub fn is_closed(status_value: &str) -> bool {
    status::CLOSED.contains(&status_value)
}
