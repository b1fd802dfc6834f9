//! Participants, sessions and messages as a conversation turn needs them, and
//! the one transaction that records a turn's outcome (reply, usage, trace).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionSession, TransactionTrait,
};
use serde_json::{Value, json};
use store::entity::{
    channel, message, participant, participant_data, session, trace, usage_record, user,
};
use uuid::Uuid;

use crate::error::is_unique_violation;
use crate::pricing::{self, ServiceKind};
use crate::{Error, Result};

pub mod status {
    pub const SETUP: &str = "setup";
    pub const PENDING: &str = "pending";
    pub const ACTIVE: &str = "active";
    pub const PENDING_REVIEW: &str = "pending-review";
    pub const COMPLETE: &str = "complete";
    pub const UNKNOWN: &str = "unknown";
    /// Sessions in these states are over: new messages start a new session.
    pub const CLOSED: &[&str] = &[PENDING_REVIEW, COMPLETE, UNKNOWN];
}

pub mod role {
    pub const HUMAN: &str = "human";
    pub const AI: &str = "ai";
    pub const SYSTEM: &str = "system";
}

#[derive(Debug, Clone)]
pub struct Participant {
    pub id: i64,
    pub public_id: Uuid,
    pub identifier: String,
    pub platform: String,
    pub name: String,
}

impl From<participant::Model> for Participant {
    fn from(m: participant::Model) -> Self {
        Participant {
            id: m.id,
            public_id: m.public_id,
            identifier: m.identifier,
            platform: m.platform,
            name: m.name,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub external_id: String,
    pub team_id: i64,
    pub participant_id: i64,
    pub chatbot_id: i64,
    pub channel_id: Option<i64>,
    pub status: String,
    pub state: Value,
    pub platform: Option<String>,
    pub version_number: i32,
}

impl From<session::Model> for Session {
    fn from(m: session::Model) -> Self {
        Session {
            state: serde_json::from_str(&m.state).unwrap_or_else(|_| json!({})),
            id: m.id,
            external_id: m.external_id,
            team_id: m.team_id,
            participant_id: m.participant_id,
            chatbot_id: m.chatbot_id,
            channel_id: m.channel_id,
            status: m.status,
            platform: m.platform,
            version_number: m.version_number,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: i64,
    pub role: String,
    pub content: String,
    pub summary: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The email of a key's user: the participant identifier on API channels.
pub async fn user_email<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<String> {
    user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(|u| u.email)
        .ok_or_else(|| Error::Internal(format!("user {user_id} vanished")))
}

/// Finds or creates the participant `(team, platform, identifier)`; safe
/// against a concurrent create of the same participant.
pub async fn participant_get_or_create<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    platform: &str,
    identifier: &str,
    user_id: Option<i64>,
) -> Result<Participant> {
    let find = || {
        participant::Entity::find()
            .filter(participant::Column::TeamId.eq(team_id))
            .filter(participant::Column::Platform.eq(platform))
            .filter(participant::Column::Identifier.eq(identifier))
    };
    if let Some(p) = find().one(db).await? {
        return Ok(p.into());
    }
    let now = store::now();
    let res = participant::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(team_id),
        platform: Set(platform.to_string()),
        identifier: Set(identifier.to_string()),
        name: Set(String::new()),
        remote_id: Set(String::new()),
        user_id: Set(user_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await;
    match res {
        Ok(p) => Ok(p.into()),
        Err(e) if is_unique_violation(&e) => find()
            .one(db)
            .await?
            .map(Participant::from)
            .ok_or_else(|| Error::Internal("participant vanished after a conflict".into())),
        Err(e) => Err(e.into()),
    }
}

/// The team-wide `api` channel, created on first use.
pub async fn api_channel<C: ConnectionTrait>(db: &C, team_id: i64) -> Result<i64> {
    let find = || {
        channel::Entity::find()
            .filter(channel::Column::TeamId.eq(team_id))
            .filter(channel::Column::Platform.eq("api"))
            .filter(channel::Column::Deleted.eq(false))
    };
    if let Some(c) = find().one(db).await? {
        return Ok(c.id);
    }
    let res = channel::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(team_id),
        chatbot_id: Set(None),
        platform: Set("api".into()),
        name: Set("API".into()),
        config: Set(json!({})),
        secret: Set(None),
        enabled: Set(true),
        disabled_message: Set(None),
        deleted: Set(false),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(db)
    .await;
    match res {
        Ok(c) => Ok(c.id),
        Err(e) if is_unique_violation(&e) => find()
            .one(db)
            .await?
            .map(|c| c.id)
            .ok_or_else(|| Error::Internal("api channel vanished after a conflict".into())),
        Err(e) => Err(e.into()),
    }
}

/// The participant's most recent open session with this chatbot row.
pub async fn latest_open_session<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    participant_id: i64,
    chatbot_row_id: i64,
) -> Result<Option<Session>> {
    Ok(session::Entity::find()
        .filter(session::Column::TeamId.eq(team_id))
        .filter(session::Column::ParticipantId.eq(participant_id))
        .filter(session::Column::ChatbotId.eq(chatbot_row_id))
        .filter(session::Column::Status.is_not_in(status::CLOSED.iter().copied()))
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .one(db)
        .await?
        .map(Session::from))
}

pub async fn session_by_id<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<Session>> {
    Ok(session::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Session::from))
}

/// Replaces one key of a session's state (the chat API's `remote_context`).
pub async fn set_state_key<C: ConnectionTrait>(
    db: &C,
    session_id: i64,
    key: &str,
    value: Value,
) -> Result<()> {
    let Some(s) = session_by_id(db, session_id).await? else {
        return Ok(());
    };
    let mut state = match s.state {
        Value::Object(o) => o,
        _ => Default::default(),
    };
    state.insert(key.to_string(), value);
    session::Entity::update_many()
        .col_expr(
            session::Column::State,
            Expr::value(Value::Object(state).to_string()),
        )
        .col_expr(session::Column::UpdatedAt, Expr::value(store::now()))
        .filter(session::Column::Id.eq(session_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The participant's most recent session with any row of a chatbot family.
pub async fn latest_session_in_family<C: ConnectionTrait>(
    db: &C,
    participant_id: i64,
    family_id: i64,
) -> Result<Option<Session>> {
    use store::entity::chatbot;
    let rows: Vec<i64> = chatbot::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(chatbot::Column::Id.eq(family_id))
                .add(chatbot::Column::WorkingVersionId.eq(family_id)),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    Ok(session::Entity::find()
        .filter(session::Column::ParticipantId.eq(participant_id))
        .filter(session::Column::ChatbotId.is_in(rows))
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .one(db)
        .await?
        .map(Session::from))
}

/// A live channel of a chatbot family on a platform: (id, enabled).
pub async fn family_channel<C: ConnectionTrait>(
    db: &C,
    family_id: i64,
    platform: &str,
) -> Result<Option<(i64, bool)>> {
    Ok(channel::Entity::find()
        .filter(channel::Column::ChatbotId.eq(family_id))
        .filter(channel::Column::Platform.eq(platform))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?
        .map(|c| (c.id, c.enabled)))
}

pub async fn participant_by_id<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<Participant>> {
    Ok(participant::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Participant::from))
}

/// Records that the participant blocked the bot on their platform: later
/// deliveries are not attempted until they write again.
pub async fn mark_participant_blocked<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    participant_id: i64,
    family_id: i64,
    why: &str,
) -> Result<()> {
    let row = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db)
        .await?;
    let now = store::now();
    match row {
        Some(row) => {
            let mut meta = match row.system_metadata.clone() {
                Value::Object(o) => o,
                _ => Default::default(),
            };
            meta.insert("consent".into(), json!(false));
            meta.insert("blocked".into(), json!(true));
            meta.insert("blocked_reason".into(), json!(why));
            let mut am: participant_data::ActiveModel = row.into();
            am.system_metadata = Set(Value::Object(meta));
            am.updated_at = Set(now);
            am.update(db).await?;
        }
        None => {
            participant_data::ActiveModel {
                team_id: Set(team_id),
                participant_id: Set(participant_id),
                chatbot_id: Set(family_id),
                data: Set("{}".into()),
                system_metadata: Set(
                    json!({"consent": false, "blocked": true, "blocked_reason": why}),
                ),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}

/// Whether the participant blocked the bot (recorded at a failed delivery).
pub async fn is_blocked<C: ConnectionTrait>(
    db: &C,
    participant_id: i64,
    family_id: i64,
) -> Result<bool> {
    Ok(participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db)
        .await?
        .is_some_and(|r| r.system_metadata.get("blocked").and_then(Value::as_bool) == Some(true)))
}

/// A participant who writes again has unblocked the bot.
pub async fn clear_blocked<C: ConnectionTrait>(
    db: &C,
    participant_id: i64,
    family_id: i64,
) -> Result<()> {
    if !is_blocked(db, participant_id, family_id).await? {
        return Ok(());
    }
    let rows = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .all(db)
        .await?;
    for row in rows {
        let mut meta = match row.system_metadata.clone() {
            Value::Object(o) => o,
            _ => Default::default(),
        };
        meta.remove("blocked");
        meta.remove("blocked_reason");
        meta.insert("consent".into(), json!(true));
        let mut am: participant_data::ActiveModel = row.into();
        am.system_metadata = Set(Value::Object(meta));
        am.update(db).await?;
    }
    Ok(())
}

/// The text of the message a schedule firing already wrote, if any.
pub async fn schedule_message<C: ConnectionTrait>(
    db: &C,
    session_id: i64,
    schedule_id: i64,
    firing: i64,
) -> Result<Option<String>> {
    let rows = message::Entity::find()
        .filter(message::Column::SessionId.eq(session_id))
        .filter(message::Column::Role.eq(role::AI))
        .order_by_desc(message::Column::Id)
        .limit(20)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .find(|m| {
            m.metadata.get("schedule_id").and_then(Value::as_i64) == Some(schedule_id)
                && m.metadata.get("firing").and_then(Value::as_i64) == Some(firing)
        })
        .map(|m| m.content))
}

/// Tags a stored bot message with the schedule firing that wrote it.
pub async fn mark_schedule_message<C: ConnectionTrait>(
    db: &C,
    message_id: i64,
    schedule_id: i64,
    firing: i64,
) -> Result<()> {
    message::Entity::update_many()
        .col_expr(
            message::Column::Metadata,
            Expr::value(json!({"schedule_id": schedule_id, "firing": firing})),
        )
        .filter(message::Column::Id.eq(message_id))
        .exec(db)
        .await?;
    Ok(())
}

/// A finished turn for this input message, if there is one: (reply message id, reply text).
pub async fn finished_turn<C: ConnectionTrait>(
    db: &C,
    input_message_id: i64,
) -> Result<Option<(i64, String)>> {
    let Some(t) = trace::Entity::find()
        .filter(trace::Column::InputMessageId.eq(input_message_id))
        .filter(trace::Column::Status.eq("success"))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(out) = t.output_message_id else {
        return Ok(None);
    };
    Ok(message::Entity::find_by_id(out)
        .one(db)
        .await?
        .map(|m| (m.id, m.content)))
}

/// A session by its external id in any team (the chat API authenticates by
/// session, not by team).
pub async fn session_by_external_id_any_team<C: ConnectionTrait>(
    db: &C,
    external_id: &str,
) -> Result<Option<Session>> {
    Ok(session::Entity::find()
        .filter(session::Column::ExternalId.eq(external_id))
        .one(db)
        .await?
        .map(Session::from))
}

/// What access checks need about a session: (status, created_at,
/// token required, participant identifier, chatbot not archived).
pub async fn session_access_facts<C: ConnectionTrait>(
    db: &C,
    session_id: i64,
) -> Result<Option<(String, chrono::DateTime<chrono::Utc>, bool, String, bool)>> {
    use store::entity::chatbot;
    let Some(s) = session::Entity::find_by_id(session_id).one(db).await? else {
        return Ok(None);
    };
    let identifier = participant::Entity::find_by_id(s.participant_id)
        .one(db)
        .await?
        .map(|p| p.identifier)
        .unwrap_or_default();
    let live = chatbot::Entity::find_by_id(s.chatbot_id)
        .one(db)
        .await?
        .is_some_and(|c| !c.is_archived);
    Ok(Some((
        s.status,
        s.created_at,
        s.session_token_required,
        identifier,
        live,
    )))
}

pub async fn session_by_external_id<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    external_id: &str,
) -> Result<Option<Session>> {
    Ok(session::Entity::find()
        .filter(session::Column::TeamId.eq(team_id))
        .filter(session::Column::ExternalId.eq(external_id))
        .one(db)
        .await?
        .map(Session::from))
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub team_id: i64,
    pub participant_id: i64,
    pub chatbot_row_id: i64,
    pub channel_id: Option<i64>,
    pub platform: Option<String>,
    pub version_number: i32,
    pub state: Value,
}

pub async fn create_session<C: ConnectionTrait>(db: &C, s: NewSession) -> Result<Session> {
    let now = store::now();
    let m = session::ActiveModel {
        external_id: Set(Uuid::new_v4().to_string()),
        team_id: Set(s.team_id),
        participant_id: Set(s.participant_id),
        chatbot_id: Set(s.chatbot_row_id),
        channel_id: Set(s.channel_id),
        status: Set(status::SETUP.into()),
        state: Set(s.state.to_string()),
        platform: Set(s.platform),
        version_number: Set(s.version_number),
        metadata: Set(json!({})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(m.into())
}

/// The writes that open a turn, in one transaction: the session when it is
/// new, messages seeded before it (OpenAI endpoint history), and the human
/// message, which is thereby persisted before any reply is attempted.
pub async fn begin_turn<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    existing: Option<Session>,
    new: NewSession,
    seeded: &[(String, String)],
    human: &str,
) -> Result<(Session, i64)> {
    let txn = db.begin().await?;
    let session = match existing {
        Some(s) => s,
        None => create_session(&txn, new).await?,
    };
    for (role, content) in seeded {
        insert_message(&txn, session.team_id, session.id, role, content, json!({})).await?;
    }
    let mid = insert_message(
        &txn,
        session.team_id,
        session.id,
        role::HUMAN,
        human,
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok((session, mid))
}

/// Ends a session (status `pending-review`), recording who ended it.
pub async fn end_session<C: ConnectionTrait>(
    db: &C,
    session_id: i64,
    ended_by: &str,
) -> Result<()> {
    let now = store::now();
    session::Entity::update_many()
        .col_expr(session::Column::Status, Expr::value(status::PENDING_REVIEW))
        .col_expr(session::Column::EndedAt, Expr::value(now))
        .col_expr(session::Column::EndedBy, Expr::value(ended_by))
        .col_expr(session::Column::UpdatedAt, Expr::value(now))
        .filter(session::Column::Id.eq(session_id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn insert_message<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    session_id: i64,
    role: &str,
    content: &str,
    metadata: Value,
) -> Result<i64> {
    let m = message::ActiveModel {
        team_id: Set(team_id),
        session_id: Set(session_id),
        role: Set(role.to_string()),
        content: Set(content.to_string()),
        summary: Set(None),
        metadata: Set(metadata),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(m.id)
}

/// The history before message `before_id`: from the latest summary checkpoint
/// (inclusive) onwards, at most `limit` of the newest, oldest first. Two
/// queries whatever the session length.
pub async fn history<C: ConnectionTrait>(
    db: &C,
    session_id: i64,
    before_id: i64,
    limit: u64,
) -> Result<Vec<StoredMessage>> {
    let checkpoint = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::SessionId.eq(session_id))
        .filter(message::Column::Id.lt(before_id))
        .filter(message::Column::Summary.is_not_null())
        .order_by_desc(message::Column::Id)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    let mut q = message::Entity::find()
        .filter(message::Column::SessionId.eq(session_id))
        .filter(message::Column::Id.lt(before_id));
    if let Some(c) = checkpoint {
        q = q.filter(message::Column::Id.gte(c));
    }
    // Newest first with a cap, so a long conversation costs the same as a short one.
    let mut rows = q
        .order_by_desc(message::Column::CreatedAt)
        .order_by_desc(message::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    rows.reverse();
    Ok(rows
        .into_iter()
        .map(|m| StoredMessage {
            id: m.id,
            role: m.role,
            content: m.content,
            summary: m.summary,
            created_at: m.created_at,
        })
        .collect())
}

/// A participant's data for a chatbot family (`{}` when none).
pub async fn participant_data<C: ConnectionTrait>(
    db: &C,
    participant_id: i64,
    family_id: i64,
) -> Result<Value> {
    let row = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db)
        .await?;
    Ok(row
        .and_then(|r| serde_json::from_str(&r.data).ok())
        .unwrap_or_else(|| json!({})))
}

/// Replaces a participant's data for a chatbot family.
pub async fn set_participant_data<C: ConnectionTrait>(
    db: &C,
    team_id: i64,
    participant_id: i64,
    family_id: i64,
    data: &Value,
) -> Result<()> {
    let now = store::now();
    let existing = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.eq(participant_id))
        .filter(participant_data::Column::ChatbotId.eq(family_id))
        .one(db)
        .await?;
    match existing {
        Some(row) => {
            let mut am: participant_data::ActiveModel = row.into();
            am.data = Set(data.to_string());
            am.updated_at = Set(now);
            am.update(db).await?;
        }
        None => {
            participant_data::ActiveModel {
                team_id: Set(team_id),
                participant_id: Set(participant_id),
                chatbot_id: Set(family_id),
                data: Set(data.to_string()),
                system_metadata: Set(json!({})),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}

/// Tokens used by one call, as the provider reported them.
#[derive(Debug, Clone)]
pub struct UsageItem {
    pub provider_kind: String,
    pub model: String,
    pub kind: ServiceKind,
    pub quantity: i64,
}

/// Everything a finished (or failed) turn writes.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    pub team_id: i64,
    pub session_id: i64,
    pub participant_id: i64,
    pub chatbot_row_id: i64,
    pub version_number: i32,
    pub input_message_id: Option<i64>,
    /// The reply, or `None` when the turn failed.
    pub reply: Option<String>,
    pub reply_metadata: Value,
    pub error: Option<String>,
    pub usage: Vec<UsageItem>,
    pub duration_ms: i64,
    pub llm_calls: i32,
    /// A history checkpoint: (message id, summary of everything before it).
    pub checkpoint: Option<(i64, String)>,
    /// The system tag naming the version that replied (`v3`, `v4-unreleased`).
    pub version_tag: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub reply_message_id: Option<i64>,
    pub trace_id: i64,
}

/// Writes a turn's outcome in one transaction: the reply message, the summary
/// checkpoint, one usage record per (model, kind), the trace, and the session's
/// activity and status.
pub async fn record_turn<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    t: TurnOutcome,
) -> Result<Recorded> {
    let now = store::now();
    let txn = db.begin().await?;
    let reply_message_id = match &t.reply {
        Some(text) => Some(
            insert_message(
                &txn,
                t.team_id,
                t.session_id,
                role::AI,
                text,
                t.reply_metadata.clone(),
            )
            .await?,
        ),
        None => None,
    };
    if let (Some(mid), Some(tag)) = (reply_message_id, &t.version_tag) {
        crate::tags::tag_message(&txn, t.team_id, mid, tag, crate::tags::VERSION_CATEGORY).await?;
    }
    if let Some((mid, summary)) = &t.checkpoint {
        message::Entity::update_many()
            .col_expr(message::Column::Summary, Expr::value(summary.clone()))
            .filter(message::Column::Id.eq(*mid))
            .filter(message::Column::SessionId.eq(t.session_id))
            .exec(&txn)
            .await?;
    }
    let tr = trace::ActiveModel {
        team_id: Set(t.team_id),
        session_id: Set(Some(t.session_id)),
        chatbot_id: Set(Some(t.chatbot_row_id)),
        participant_id: Set(Some(t.participant_id)),
        version_number: Set(t.version_number),
        status: Set(if t.error.is_some() {
            "error"
        } else {
            "success"
        }
        .into()),
        duration_ms: Set(t.duration_ms),
        input_message_id: Set(t.input_message_id),
        output_message_id: Set(reply_message_id),
        error: Set(t.error.clone()),
        llm_calls: Set(t.llm_calls),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    // One record per (provider, model, kind), as the original's tracer writes them.
    let mut merged: Vec<UsageItem> = Vec::new();
    for u in t.usage.iter().filter(|u| u.quantity > 0) {
        match merged
            .iter_mut()
            .find(|m| m.provider_kind == u.provider_kind && m.model == u.model && m.kind == u.kind)
        {
            Some(m) => m.quantity += u.quantity,
            None => merged.push(u.clone()),
        }
    }
    let mut rows = Vec::new();
    // One price lookup per model, whatever the number of kinds it used.
    let mut priced: Vec<(String, String, pricing::Prices)> = Vec::new();
    for u in merged {
        let known = priced
            .iter()
            .find(|(p, m, _)| *p == u.provider_kind && *m == u.model)
            .map(|(_, _, x)| *x);
        let prices = match known {
            Some(x) => x,
            None => {
                let x = pricing::prices(&txn, t.team_id, &u.provider_kind, &u.model, now).await?;
                priced.push((u.provider_kind.clone(), u.model.clone(), x));
                x
            }
        };
        let unit = prices.get(u.kind);
        rows.push(usage_record::ActiveModel {
            team_id: Set(t.team_id),
            trace_id: Set(Some(tr.id)),
            session_id: Set(Some(t.session_id)),
            chatbot_id: Set(Some(t.chatbot_row_id)),
            participant_id: Set(Some(t.participant_id)),
            source: Set("chat".into()),
            service_kind: Set(u.kind.as_str().into()),
            provider_kind: Set(u.provider_kind),
            model_name: Set(u.model),
            quantity: Set(u.quantity),
            unit_price_e8: Set(unit),
            cost_e8: Set(unit.map_or(0, |p| pricing::cost_e8(u.quantity, p))),
            currency: Set("USD".into()),
            confidence: Set("exact".into()),
            created_at: Set(now),
            ..Default::default()
        });
    }
    if !rows.is_empty() {
        usage_record::Entity::insert_many(rows).exec(&txn).await?;
    }
    session::Entity::update_many()
        .col_expr(session::Column::LastActivityAt, Expr::value(now))
        .col_expr(session::Column::UpdatedAt, Expr::value(now))
        .filter(session::Column::Id.eq(t.session_id))
        .exec(&txn)
        .await?;
    if t.error.is_none() {
        session::Entity::update_many()
            .col_expr(session::Column::Status, Expr::value(status::ACTIVE))
            .filter(session::Column::Id.eq(t.session_id))
            .filter(session::Column::Status.eq(status::SETUP))
            .exec(&txn)
            .await?;
    }
    session::Entity::update_many()
        .col_expr(session::Column::FirstActivityAt, Expr::value(now))
        .filter(session::Column::Id.eq(t.session_id))
        .filter(session::Column::FirstActivityAt.is_null())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Recorded {
        reply_message_id,
        trace_id: tr.id,
    })
}

/// Usage of a session, per model: (model, cost e8, tokens), plus the total.
pub async fn session_usage<C: ConnectionTrait>(
    db: &C,
    session_id: i64,
) -> Result<(i64, Vec<(String, i64, i64)>)> {
    let rows: Vec<(String, i64, i64)> = usage_record::Entity::find()
        .select_only()
        .column(usage_record::Column::ModelName)
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back for one decode path.
        .column_as(Expr::cust("CAST(SUM(cost_e8) AS BIGINT)"), "cost")
        .column_as(Expr::cust("CAST(SUM(quantity) AS BIGINT)"), "tokens")
        .filter(usage_record::Column::SessionId.eq(session_id))
        .group_by(usage_record::Column::ModelName)
        .order_by_asc(usage_record::Column::ModelName)
        .into_tuple::<(String, i64, i64)>()
        .all(db)
        .await?;
    let total = rows.iter().map(|r| r.1).sum();
    Ok((total, rows))
}
