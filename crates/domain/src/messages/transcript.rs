//! Stored messages as a transcript shows them: roles as the API names them,
//! tags, attachments, and summary checkpoints as system messages.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};
use store::entity::{file, message, session_file};

use super::MessageRole;
use crate::conn::{Reads, Writes};
use crate::ids::{MessageId, SessionId, TeamId};
use crate::text_enum::stored;
use crate::{Result, tags};

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
    pub role: MessageRole,
    pub content: String,
    pub metadata: Value,
    pub tags: Vec<String>,
    pub attachments: Vec<Attachment>,
}

/// Metadata keys internal to the original's OpenAI Assistants support, never shown.
const HIDDEN_METADATA: &[&str] = &[
    "openai_run_id",
    "openai_file_ids",
    "openai_thread_checkpoint",
];

/// Metadata keys that reference attached files by id.
const FILE_REF_KEYS: &[&str] = &["ocs_attachment_file_ids", "cited_files", "generated_files"];

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

/// Transcript entries for stored messages: tags and attachments in two
/// queries, summary checkpoints shown as system messages before their message.
pub async fn build<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    session_id: SessionId,
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
                role: MessageRole::System,
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
            role: stored(&m.role)?,
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
pub async fn since(
    db: &impl Reads,
    team_id: TeamId,
    session_id: SessionId,
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
        .all(db.reader())
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((build(db.reader(), team_id, session_id, rows).await?, more))
}

/// One stored message of a session, as the transcript shows it.
pub async fn one(
    db: &impl Reads,
    team_id: TeamId,
    session_id: SessionId,
    message_id: MessageId,
) -> Result<Option<TranscriptMessage>> {
    let rows = message::Entity::find_by_id(message_id.0)
        .filter(message::Column::SessionId.eq(session_id))
        .all(db.reader())
        .await?;
    Ok(build(db.reader(), team_id, session_id, rows)
        .await?
        .into_iter()
        .rfind(|m| m.metadata.get("compression_marker").is_none()))
}
