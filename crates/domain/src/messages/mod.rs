//! Stored chat messages: their roles, writing one, the history window a
//! turn reads, and the marks proactive messages leave so a retried job
//! finds what it already wrote.

pub mod accept;
pub mod export;
pub mod transcript;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use serde_json::{Value, json};
use store::entity::message;

pub use accept::{Incoming, accept};
pub use transcript::TranscriptMessage;

use crate::Result;
use crate::conn::Reads;
use crate::ids::{MessageId, ScheduleId, SessionId, TeamId};
use crate::text_enum::{stored, text_enum};

text_enum!(
    /// Who wrote a message, as stored (the original's names).
    pub enum MessageRole {
        Human = "human",
        Ai = "ai",
        System = "system",
    }
);

impl MessageRole {
    /// The role as the API and OpenAI-style clients name it.
    pub const fn api_name(self) -> &'static str {
        match self {
            MessageRole::Human => "user",
            MessageRole::Ai => "assistant",
            MessageRole::System => "system",
        }
    }

    /// The role an API name (`user`, `assistant`, `system`) stands for.
    pub fn from_api_name(name: &str) -> Option<Self> {
        match name {
            "user" => Some(MessageRole::Human),
            "assistant" => Some(MessageRole::Ai),
            "system" => Some(MessageRole::System),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: MessageId,
    pub role: MessageRole,
    pub content: String,
    pub summary: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl StoredMessage {
    /// A stored row of any history table.
    pub(crate) fn read(
        id: i64,
        role: &str,
        content: String,
        summary: Option<String>,
        created_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self> {
        Ok(StoredMessage {
            id: MessageId(id),
            role: stored(role)?,
            content,
            summary,
            created_at,
        })
    }
}

/// Inserts a message in `tx` (which counts it in the usage rollups).
pub async fn insert(
    tx: &crate::Tx<'_>,
    team_id: TeamId,
    session_id: SessionId,
    role: MessageRole,
    content: &str,
    metadata: Value,
) -> Result<MessageId> {
    let m = message::ActiveModel {
        team_id: Set(team_id.0),
        session_id: Set(session_id.0),
        role: Set(role.as_str().to_string()),
        content: Set(content.to_string()),
        summary: Set(None),
        metadata: Set(metadata),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(&**tx)
    .await?;
    tx.usage().message(m.id, role == MessageRole::Human);
    Ok(MessageId(m.id))
}

/// The history before message `before` (all of it with `None`): from the
/// latest summary checkpoint (inclusive) onwards, at most `limit` of the
/// newest, oldest first. Two queries whatever the session length.
pub async fn history(
    db: &impl Reads,
    session_id: SessionId,
    before: Option<MessageId>,
    limit: u64,
) -> Result<Vec<StoredMessage>> {
    let before_id = before.map_or(i64::MAX, i64::from);
    let scope = Condition::all()
        .add(message::Column::SessionId.eq(session_id))
        .add(message::Column::Id.lt(before_id));
    let rows = checkpoint_window::<message::Entity, _>(
        db.reader(),
        scope,
        (message::Column::Id, message::Column::Summary),
        &[message::Column::CreatedAt, message::Column::Id],
        limit,
    )
    .await?;
    rows.into_iter()
        .map(|m| StoredMessage::read(m.id, &m.role, m.content, m.summary, m.created_at))
        .collect()
}

/// A session's messages, oldest first, at most the newest `limit`.
pub async fn all(db: &impl Reads, session_id: SessionId, limit: u64) -> Result<Vec<StoredMessage>> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut rows = message::Entity::find()
        .filter(message::Column::SessionId.eq(session_id))
        .order_by_desc(message::Column::Id)
        .limit(limit)
        .all(db.reader())
        .await?;
    rows.reverse();
    rows.into_iter()
        .map(|m| StoredMessage::read(m.id, &m.role, m.content, m.summary, m.created_at))
        .collect()
}

/// The rows of `scope` from its latest summary checkpoint (inclusive) on, at
/// most `limit` of the newest, oldest first: what a history reads, whichever
/// table keeps it. `id` and `summary` name the id and checkpoint columns;
/// `newest` orders newest first. One query whatever the history's length:
/// the checkpoint is a subquery (through the partial index of checkpoints),
/// evaluated once.
pub(crate) async fn checkpoint_window<E: EntityTrait, C: sea_orm::ConnectionTrait>(
    db: &C,
    scope: Condition,
    (id, summary): (E::Column, E::Column),
    newest: &[E::Column],
    limit: u64,
) -> Result<Vec<E::Model>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    use sea_orm::{QuerySelect, QueryTrait};
    let checkpoint = E::find()
        .select_only()
        .column(id)
        .filter(scope.clone())
        .filter(summary.is_not_null())
        .order_by_desc(id)
        .limit(1)
        .into_query();
    let floor = Func::coalesce([Expr::from(checkpoint), Expr::val(0i64)]);
    let mut q = E::find().filter(scope).filter(Expr::col(id).gte(floor));
    for c in newest {
        q = q.order_by_desc(*c);
    }
    let mut rows = q.limit(limit).all(db).await?;
    rows.reverse();
    Ok(rows)
}

/// Marks on a bot message that say which job wrote it, so a retry of that
/// job re-delivers the message instead of writing another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// One firing of a schedule.
    Schedule {
        schedule_id: ScheduleId,
        firing: i64,
    },
    /// A `trigger_bot` job.
    Task(uuid::Uuid),
}

impl Origin {
    /// Adds the marks to a message's metadata (written with the message, so a
    /// stored message is never unmarked).
    pub fn mark(self, metadata: &mut Value) {
        let marks = match self {
            Origin::Schedule {
                schedule_id,
                firing,
            } => json!({"schedule_id": schedule_id, "firing": firing}),
            Origin::Task(t) => json!({"task_id": t}),
        };
        if !metadata.is_object() {
            *metadata = json!({});
        }
        if let (Some(m), Value::Object(add)) = (metadata.as_object_mut(), marks) {
            m.extend(add);
        }
    }

    fn marks(self, metadata: &Value) -> bool {
        match self {
            Origin::Schedule {
                schedule_id,
                firing,
            } => {
                metadata.get("schedule_id").and_then(Value::as_i64) == Some(schedule_id.0)
                    && metadata.get("firing").and_then(Value::as_i64) == Some(firing)
            }
            Origin::Task(t) => {
                metadata.get("task_id").and_then(Value::as_str) == Some(t.to_string().as_str())
            }
        }
    }
}

/// The text of the bot message `origin` already wrote in the session, if any.
pub async fn written_by(
    db: &impl Reads,
    session_id: SessionId,
    origin: Origin,
) -> Result<Option<String>> {
    Ok(recent_marked(db, session_id, MessageRole::Ai, origin)
        .await?
        .map(|m| m.content))
}

/// The newest of the session's last 20 `role` messages that `origin` marks
/// (a retried job's message is among the last few).
async fn recent_marked(
    db: &impl Reads,
    session_id: SessionId,
    role: MessageRole,
    origin: Origin,
) -> Result<Option<message::Model>> {
    let rows = message::Entity::find()
        .filter(message::Column::SessionId.eq(session_id))
        .filter(message::Column::Role.eq(role))
        .order_by_desc(message::Column::Id)
        .limit(20)
        .all(db.reader())
        .await?;
    Ok(rows.into_iter().find(|m| origin.marks(&m.metadata)))
}

/// When the participant last wrote on a channel, in any of their sessions
/// there (what WhatsApp's 24-hour service window counts from).
pub async fn last_inbound_at(
    db: &impl Reads,
    participant_id: crate::ids::ParticipantId,
    channel_id: crate::ids::ChannelId,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    use sea_orm::sea_query::Query;
    use store::entity::session;
    let sessions = Query::select()
        .column(session::Column::Id)
        .from(session::Entity)
        .and_where(session::Column::ParticipantId.eq(participant_id.0))
        .and_where(session::Column::ChannelId.eq(channel_id.0))
        .to_owned();
    Ok(message::Entity::find()
        .filter(message::Column::SessionId.in_subquery(sessions))
        .filter(message::Column::Role.eq(MessageRole::Human))
        .order_by_desc(message::Column::Id)
        .one(db.reader())
        .await?
        .map(|m| m.created_at))
}

/// The human message a job already stored in the session (a retried media
/// turn finds the message it wrote instead of writing another).
pub async fn human_by_task(
    db: &impl Reads,
    session_id: SessionId,
    task_id: uuid::Uuid,
) -> Result<Option<(MessageId, String)>> {
    Ok(
        recent_marked(db, session_id, MessageRole::Human, Origin::Task(task_id))
            .await?
            .map(|m| (MessageId(m.id), m.content)),
    )
}

/// A file a participant sent, stored: what [`with_file`] records.
#[derive(Debug, Clone)]
pub struct SentFile {
    pub key: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    /// A voice note (its text is the transcript).
    pub voice: bool,
}

/// Stores the human message that carried a file, in one transaction: the
/// file's record, the message (marked with the job that wrote it, the file
/// among its attachments), and the file's link to the session.
pub async fn with_file(
    domain: &crate::Domain,
    session: &crate::sessions::Session,
    task_id: uuid::Uuid,
    text: &str,
    file: &SentFile,
) -> Result<MessageId> {
    let tx = domain.begin().await?;
    let f = crate::files::record(
        &*tx,
        session.team_id,
        &file.name,
        &file.key,
        &file.content_type,
        file.size,
        "message_media",
    )
    .await?;
    let mut metadata = json!({"ocs_attachment_file_ids": [f.id]});
    if file.voice {
        metadata["voice_note"] = json!(true);
    }
    Origin::Task(task_id).mark(&mut metadata);
    let mid = insert(
        &tx,
        session.team_id,
        session.id,
        MessageRole::Human,
        text,
        metadata,
    )
    .await?;
    crate::files::attach_to_session(&*tx, session.id.0, f.id, "ocs_attachments").await?;
    tx.commit().await?;
    Ok(mid)
}

/// A file a bot message carries, to send along on a push channel.
#[derive(Debug, Clone)]
pub struct CarriedFile {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub key: String,
}

/// The files a (bot) message generated, in the order it lists them.
pub async fn generated_files(db: &impl Reads, message_id: MessageId) -> Result<Vec<CarriedFile>> {
    use store::entity::file;
    let Some(m) = message::Entity::find_by_id(message_id.0)
        .one(db.reader())
        .await?
    else {
        return Ok(Vec::new());
    };
    let ids: Vec<i64> = m
        .metadata
        .get("generated_files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = file::Entity::find()
        .filter(file::Column::Id.is_in(ids.clone()))
        .filter(file::Column::TeamId.eq(m.team_id))
        .all(db.reader())
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| rows.iter().find(|f| f.id == *id))
        .filter_map(|f| {
            Some(CarriedFile {
                id: f.id,
                name: f.name.clone(),
                content_type: f.content_type.clone(),
                key: f.storage_key.clone().filter(|k| !k.is_empty())?,
            })
        })
        .collect())
}
