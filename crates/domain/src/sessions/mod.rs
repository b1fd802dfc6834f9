//! Sessions (conversations): the row, its status, the queries every caller
//! uses, and the one way a session ends (`end`), which records who ended it
//! and raises `ConversationEnded`.

pub mod access;
pub(crate) mod counts;
pub mod listing;
pub mod start;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::{Value, json};
use store::entity::{chatbot, session};
use uuid::Uuid;

pub use listing::{Attachment, Detail, Filter, Summary, detail, list, summary};
pub use start::{Caller, Create, Start, Started, create_seeded, start};

use crate::channels::Platform;
use crate::conn::{Reads, Writes};
pub use crate::events::EndedBy;
use crate::events::Event;
use crate::ids::{ChannelId, ChatbotId, ParticipantId, SessionId, TeamId};
use crate::text_enum::{stored, text_enum};
use crate::values::{object, strip_controls};
use crate::{Result, Tx, tags};

pub const NOT_FOUND: &str = "No ExperimentSession matches the given query.";

text_enum!(
    /// A session's status (the original's names).
    pub enum SessionStatus {
        Setup = "setup",
        Pending = "pending",
        Active = "active",
        PendingReview = "pending-review",
        Complete = "complete",
        Unknown = "unknown",
    }
);

impl SessionStatus {
    /// Sessions in these states are over: new messages start a new session.
    pub const CLOSED: &'static [SessionStatus] = &[
        SessionStatus::PendingReview,
        SessionStatus::Complete,
        SessionStatus::Unknown,
    ];

    pub fn is_closed(self) -> bool {
        Self::CLOSED.contains(&self)
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub external_id: String,
    pub team_id: TeamId,
    pub participant_id: ParticipantId,
    /// The chatbot row the session was started for (working version or snapshot).
    pub chatbot_id: ChatbotId,
    pub channel_id: Option<ChannelId>,
    pub status: SessionStatus,
    pub state: Value,
    pub platform: Option<Platform>,
    pub version_number: i32,
}

impl Session {
    pub(crate) fn from_row(m: session::Model) -> Result<Self> {
        Ok(Session {
            state: serde_json::from_str(&m.state).unwrap_or_else(|_| json!({})),
            id: SessionId(m.id),
            external_id: m.external_id,
            team_id: TeamId(m.team_id),
            participant_id: ParticipantId(m.participant_id),
            chatbot_id: ChatbotId(m.chatbot_id),
            channel_id: m.channel_id.map(ChannelId),
            status: stored(&m.status)?,
            platform: m.platform.as_deref().map(stored).transpose()?,
            version_number: m.version_number,
        })
    }
}

fn one(row: Option<session::Model>) -> Result<Option<Session>> {
    row.map(Session::from_row).transpose()
}

pub async fn get(db: &impl Reads, id: SessionId) -> Result<Option<Session>> {
    one(session::Entity::find_by_id(id.0).one(db.reader()).await?)
}

pub async fn by_external_id(
    db: &impl Reads,
    team_id: TeamId,
    external_id: &str,
) -> Result<Option<Session>> {
    one(session::Entity::find()
        .filter(session::Column::TeamId.eq(team_id))
        .filter(session::Column::ExternalId.eq(external_id))
        .one(db.reader())
        .await?)
}

/// A session by its external id in any team (the chat API authenticates by
/// session, not by team).
pub async fn by_external_id_any_team(
    db: &impl Reads,
    external_id: &str,
) -> Result<Option<Session>> {
    one(session::Entity::find()
        .filter(session::Column::ExternalId.eq(external_id))
        .one(db.reader())
        .await?)
}

/// The id of a session of the team (the session actions' 404 check).
pub async fn exists(
    db: &impl Reads,
    team_id: TeamId,
    external_id: &str,
) -> Result<Option<SessionId>> {
    Ok(session::Entity::find()
        .filter(session::Column::TeamId.eq(team_id))
        .filter(session::Column::ExternalId.eq(external_id))
        .one(db.reader())
        .await?
        .map(|s| SessionId(s.id)))
}

/// The participant's most recent open session with this chatbot row, on
/// `platform` when one is given.
pub async fn latest_open(
    db: &impl Reads,
    team_id: TeamId,
    participant_id: ParticipantId,
    chatbot_id: ChatbotId,
    platform: Option<Platform>,
) -> Result<Option<Session>> {
    let mut q = session::Entity::find()
        .filter(session::Column::TeamId.eq(team_id))
        .filter(session::Column::ParticipantId.eq(participant_id))
        .filter(session::Column::ChatbotId.eq(chatbot_id))
        .filter(
            session::Column::Status.is_not_in(SessionStatus::CLOSED.iter().map(|s| s.as_str())),
        );
    if let Some(p) = platform {
        q = q.filter(session::Column::Platform.eq(p));
    }
    one(q
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .one(db.reader())
        .await?)
}

/// The participant's most recent session with any row of a chatbot family.
pub async fn latest_in_family(
    db: &impl Reads,
    participant_id: ParticipantId,
    family_id: ChatbotId,
) -> Result<Option<Session>> {
    let db = db.reader();
    let rows: Vec<i64> = chatbot::Entity::find()
        .filter(
            Condition::any()
                .add(chatbot::Column::Id.eq(family_id))
                .add(chatbot::Column::WorkingVersionId.eq(family_id)),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    one(session::Entity::find()
        .filter(session::Column::ParticipantId.eq(participant_id))
        .filter(session::Column::ChatbotId.is_in(rows))
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .one(db)
        .await?)
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub team_id: TeamId,
    pub participant_id: ParticipantId,
    pub chatbot_id: ChatbotId,
    pub channel_id: Option<ChannelId>,
    pub platform: Option<Platform>,
    pub version_number: i32,
    pub state: Value,
    /// The catalog count the turn opening it read, if it did: the version
    /// whose triggers fire then comes from the catalog.
    pub epoch: Option<crate::catalog::Epoch>,
}

/// Creates a session in `tx`; its `conversation_start` (and, for the
/// participant's first session with the chatbot, `participant_joined`)
/// triggers fire with it.
pub async fn create(tx: &Tx<'_>, s: NewSession) -> Result<Session> {
    let db = tx;
    let now = store::now();
    let m = session::ActiveModel {
        external_id: Set(Uuid::new_v4().to_string()),
        team_id: Set(s.team_id.0),
        participant_id: Set(s.participant_id.0),
        chatbot_id: Set(s.chatbot_id.0),
        channel_id: Set(s.channel_id.map(i64::from)),
        status: Set(SessionStatus::Setup.as_str().into()),
        state: Set(s.state.to_string()),
        platform: Set(s.platform.map(|p| p.as_str().to_string())),
        version_number: Set(s.version_number),
        metadata: Set(json!({})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db.writer())
    .await?;
    tx.count_session(counts::Key::of(&m), 1);
    let session = Session::from_row(m)?;
    started(tx, &session, s.epoch).await?;
    Ok(session)
}

async fn started(tx: &Tx<'_>, s: &Session, at: Option<crate::catalog::Epoch>) -> Result<()> {
    use crate::event_triggers::{self as triggers, EventKind, Happened};
    let st = match at {
        Some(at) => tx
            .domain()
            .catalog
            .session_version(tx, at, s.chatbot_id)
            .await?
            .map(|v| triggers::SessionTriggers::of(&v)),
        None => triggers::session_triggers(tx, s.chatbot_id).await?,
    };
    let Some(st) = st else {
        return Ok(());
    };
    let happened = |kind, reference: &str| Happened {
        team_id: s.team_id,
        session_id: s.id,
        chatbot_row: st.row,
        triggers: &st.triggers,
        kind,
        ended_by: None,
        reference: reference.to_string(),
    };
    triggers::fire(tx, happened(EventKind::ConversationStart, "start")).await?;
    if triggers::matching(&st.triggers, EventKind::ParticipantJoined, None)
        .next()
        .is_none()
    {
        return Ok(());
    }
    let earlier = session::Entity::find()
        .filter(session::Column::ParticipantId.eq(s.participant_id))
        .filter(session::Column::Id.ne(s.id))
        .filter(session::Column::ChatbotId.in_subquery(triggers::family_rows(st.family)))
        .count(&**tx)
        .await?;
    if earlier == 0 {
        triggers::fire(tx, happened(EventKind::ParticipantJoined, "joined")).await?;
    }
    Ok(())
}

/// Ends a session (status `pending-review`, `ended_at` now), recording who
/// ended it; `ConversationEnded` is emitted when the transaction commits.
/// Every path that ends a session comes here.
pub async fn end(
    tx: &mut Tx<'_>,
    team_id: TeamId,
    session_id: SessionId,
    ended_by: EndedBy,
) -> Result<()> {
    // Locked (PostgreSQL; SQLite has one writer) so the status it leaves,
    // and so the counter it leaves, is the one read here.
    let row = session::Entity::find_by_id(session_id.0)
        .filter(session::Column::TeamId.eq(team_id))
        .lock_exclusive()
        .one(&**tx)
        .await?;
    if let Some(row) = &row {
        let now = store::now();
        counts::move_status(
            tx,
            session_id,
            stored(&row.status)?,
            SessionStatus::PendingReview,
            |q| {
                q.col_expr(session::Column::EndedAt, Expr::value(now))
                    .col_expr(session::Column::EndedBy, Expr::value(ended_by))
                    .col_expr(session::Column::UpdatedAt, Expr::value(now))
            },
        )
        .await?
        .ok_or_else(|| crate::Error::Conflict("the session changed; try again".into()))?;
    }
    tx.raise(Event::ConversationEnded {
        team_id,
        session_id,
        ended_by,
    });
    let Some(row) = row else {
        return Ok(());
    };
    let Some(st) = crate::event_triggers::session_triggers(tx, ChatbotId(row.chatbot_id)).await?
    else {
        return Ok(());
    };
    crate::event_triggers::fire(
        tx,
        crate::event_triggers::Happened {
            team_id,
            session_id,
            chatbot_row: st.row,
            triggers: &st.triggers,
            kind: crate::event_triggers::EventKind::ConversationEnd,
            ended_by: Some(ended_by),
            reference: "end".into(),
        },
    )
    .await
}

/// Merges keys into a session's state.
pub async fn merge_state(
    db: &impl Writes,
    session_id: SessionId,
    values: impl IntoIterator<Item = (String, Value)>,
) -> Result<()> {
    let Some(s) = get_written(db, session_id).await? else {
        return Ok(());
    };
    let mut state = object(s.state);
    for (k, v) in values {
        state.insert(k, v);
    }
    write_state(db, session_id, &Value::Object(state)).await
}

/// Replaces the session state (no merge).
pub async fn replace_state(db: &impl Writes, session_id: SessionId, state: &Value) -> Result<()> {
    write_state(db, session_id, &strip_controls(state)).await
}

async fn write_state(db: &impl Writes, session_id: SessionId, state: &Value) -> Result<()> {
    session::Entity::update_many()
        .col_expr(session::Column::State, Expr::value(state.to_string()))
        .col_expr(session::Column::UpdatedAt, Expr::value(store::now()))
        .filter(session::Column::Id.eq(session_id))
        .exec(db.writer())
        .await?;
    Ok(())
}

/// A session as the writer sees it (inside a transaction, its own writes).
async fn get_written(db: &impl Writes, id: SessionId) -> Result<Option<Session>> {
    one(session::Entity::find_by_id(id.0).one(db.writer()).await?)
}

/// All tag names on a session, sorted.
pub async fn tag_names(db: &impl Reads, session_id: SessionId) -> Result<Vec<String>> {
    Ok(tags::session_tag_names(db.reader(), &[session_id.0])
        .await?
        .remove(&session_id.0)
        .unwrap_or_default())
}
