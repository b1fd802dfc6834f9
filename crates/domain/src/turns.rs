//! A conversation turn's writes: the transaction that opens it (session and
//! human message), and the one that records its outcome (reply, summary
//! checkpoint, usage priced per model, the trace, the session's activity).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::{Value, json};
use store::entity::{message, session, trace, usage_record};

use crate::conn::{Reads, Writes};
use crate::histories::{self, HistoryWrite};
use crate::ids::{ChatbotId, MessageId, ParticipantId, SessionId, TeamId};
use crate::messages::{self, MessageRole};
use crate::pricing::{self, ServiceKind};
use crate::sessions::{self, NewSession, Session, SessionStatus};
pub use crate::traces::{Span, TraceStatus, UsageItem};
use crate::{Domain, Result};

/// The writes that open a turn, in one transaction: the session when it is
/// new, messages seeded before it (OpenAI endpoint history), and the human
/// message, which is thereby persisted before any reply is attempted.
pub async fn begin(
    domain: &Domain,
    existing: Option<Session>,
    new: NewSession,
    seeded: &[(MessageRole, String)],
    human: &str,
) -> Result<(Session, MessageId)> {
    let tx = domain.begin().await?;
    let (session, mid) = begin_in(&tx, existing, new, seeded, human).await?;
    tx.commit().await?;
    Ok((session, mid))
}

/// `begin` inside the caller's transaction.
pub async fn begin_in(
    tx: &crate::Tx<'_>,
    existing: Option<Session>,
    new: NewSession,
    seeded: &[(MessageRole, String)],
    human: &str,
) -> Result<(Session, MessageId)> {
    let session = match existing {
        Some(s) => s,
        None => sessions::create(tx, new).await?,
    };
    for (role, content) in seeded {
        messages::insert(tx, session.team_id, session.id, *role, content, json!({})).await?;
    }
    let mid = messages::insert(
        tx,
        session.team_id,
        session.id,
        MessageRole::Human,
        human,
        json!({}),
    )
    .await?;
    Ok((session, mid))
}

/// A finished turn for this input message, if there is one: (reply message id, reply text).
pub async fn finished(
    db: &impl Reads,
    input_message_id: MessageId,
) -> Result<Option<(MessageId, String)>> {
    let db = db.reader();
    let Some(t) = trace::Entity::find()
        .filter(trace::Column::InputMessageId.eq(input_message_id))
        .filter(trace::Column::Status.eq(TraceStatus::Success))
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
        .map(|m| (MessageId(m.id), m.content)))
}

/// Everything a finished (or failed) turn writes.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    pub team_id: TeamId,
    pub session_id: SessionId,
    pub participant_id: ParticipantId,
    pub chatbot_id: ChatbotId,
    pub version_number: i32,
    pub input_message_id: Option<MessageId>,
    /// The reply, or `None` when the turn failed.
    pub reply: Option<String>,
    pub reply_metadata: Value,
    pub error: Option<String>,
    pub usage: Vec<UsageItem>,
    pub duration_ms: i64,
    pub llm_calls: i32,
    /// A history checkpoint: (message id, summary of everything before it).
    pub checkpoint: Option<(MessageId, String)>,
    /// The system tag naming the version that replied (`v3`, `v4-unreleased`).
    pub version_tag: Option<String>,
    /// The pipeline nodes that ran (priced and stored on the trace).
    pub spans: Vec<Span>,
    /// State the pipeline changed; written only when the turn succeeded.
    pub changes: TurnChanges,
    /// The event triggers the turn's messages fire (the version that ran's).
    pub triggers: Vec<crate::event_triggers::Trigger>,
    /// The reply was written for an event trigger: it fires no `new_bot_message`.
    pub from_event: bool,
    /// The version that ran is the published one (whose timeout triggers arm).
    pub published: bool,
    /// The session's status when the turn began: only a session in setup
    /// can need activating (no session ever goes back to setup).
    pub session_status: SessionStatus,
    /// The catalog count the turn read when it began: prices then come from
    /// the catalog instead of a query.
    pub epoch: Option<crate::catalog::Epoch>,
}

/// What a successful turn changes besides its reply, committed with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnChanges {
    /// The chatbot family the participant data belongs to.
    pub family_id: Option<ChatbotId>,
    /// The keys a node changed in the participant's data for the family.
    pub participant_data: Option<crate::participants::data::DataChange>,
    /// Session state keys a node set, merged into the state as it is at
    /// commit (so a concurrent `update_state` keeps the keys the turn did not touch).
    pub session_state: serde_json::Map<String, Value>,
    /// Tags for the reply message (output tags, chosen routes).
    pub reply_tags: Vec<String>,
    /// Exchanges added to node- and named-scoped histories.
    pub histories: Vec<HistoryWrite>,
    /// Emails to send (queued as jobs with the turn).
    pub emails: Vec<crate::jobs::EmailPayload>,
    /// The chatbot ended the session (its `end-session` tool).
    pub end_session: bool,
    /// Reminders the chatbot set, moved or deleted.
    pub schedules: Vec<crate::schedules::ScheduleChange>,
    /// Tags a code node added to the session.
    pub session_tags: Vec<String>,
    /// Files a code node made, already stored: recorded, attached to the
    /// session and listed in the reply's `generated_files`.
    pub files: Vec<GeneratedFile>,
}

/// A file whose bytes are stored under `key`, to record with the turn.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedFile {
    pub name: String,
    pub key: String,
    pub content_type: String,
    pub size: i64,
}

impl TurnOutcome {
    /// An outcome in `session` by `chatbot` that wrote nothing yet: callers
    /// fill in what their turn produced.
    pub fn of(session: &Session, chatbot: &crate::chatbots::Resolved) -> Self {
        TurnOutcome {
            team_id: session.team_id,
            session_id: session.id,
            participant_id: session.participant_id,
            chatbot_id: chatbot.row_id,
            version_number: chatbot.version_number,
            input_message_id: None,
            reply: None,
            reply_metadata: json!({}),
            error: None,
            usage: Vec::new(),
            duration_ms: 0,
            llm_calls: 0,
            checkpoint: None,
            version_tag: Some(chatbot.version_tag()),
            spans: Vec::new(),
            triggers: crate::event_triggers::of_config(&chatbot.config),
            from_event: false,
            published: chatbot.is_published,
            session_status: session.status,
            epoch: None,
            changes: TurnChanges {
                family_id: Some(chatbot.family_id),
                ..Default::default()
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub reply_message_id: Option<MessageId>,
    pub trace_id: i64,
}

/// Writes a turn's outcome in one transaction: the reply message, the summary
/// checkpoint, one usage record per (model, kind), the trace, and the session's
/// activity and status.
pub async fn record(domain: &Domain, t: TurnOutcome) -> Result<Recorded> {
    let now = store::now();
    // Priced before the transaction: on SQLite the transaction holds the one
    // writer, and prices are reads.
    let usage = merge_usage(&t.usage);
    let priced = price(domain, t.epoch, t.team_id, &usage, now).await?;
    let mut tx = domain.begin().await?;
    let txn: &sea_orm::DatabaseTransaction = &tx;
    let mut metadata = t.reply_metadata.clone();
    if t.error.is_none() && !t.changes.files.is_empty() {
        let mut ids = Vec::new();
        for f in &t.changes.files {
            let stored = crate::files::record(
                &tx,
                t.team_id,
                &f.name,
                &f.key,
                &f.content_type,
                f.size,
                "message_media",
            )
            .await?;
            crate::files::attach_to_session(&tx, t.session_id.0, stored.id, "code_interpreter")
                .await?;
            ids.push(stored.id);
        }
        if let Some(m) = metadata.as_object_mut() {
            m.insert("generated_files".into(), json!(ids));
        }
    }
    let reply_message_id = match &t.reply {
        Some(text) => Some(
            messages::insert(
                &tx,
                t.team_id,
                t.session_id,
                MessageRole::Ai,
                text,
                metadata,
            )
            .await?,
        ),
        None => None,
    };
    if let (Some(mid), Some(tag)) = (reply_message_id, &t.version_tag) {
        crate::tags::tag_message(txn, t.team_id, mid.0, tag, crate::tags::VERSION_CATEGORY).await?;
    }
    fire_message_events(&tx, &t, reply_message_id).await?;
    if let Some((mid, summary)) = &t.checkpoint {
        message::Entity::update_many()
            .col_expr(message::Column::Summary, Expr::value(summary.clone()))
            .filter(message::Column::Id.eq(*mid))
            .filter(message::Column::SessionId.eq(t.session_id))
            .exec(txn)
            .await?;
    }
    let spans = priced_spans(&t.spans, &priced);
    let tr = trace::ActiveModel {
        team_id: Set(t.team_id.0),
        session_id: Set(Some(t.session_id.0)),
        chatbot_id: Set(Some(t.chatbot_id.0)),
        participant_id: Set(Some(t.participant_id.0)),
        version_number: Set(t.version_number),
        status: Set(if t.error.is_some() {
            TraceStatus::Error
        } else {
            TraceStatus::Success
        }
        .as_str()
        .into()),
        duration_ms: Set(t.duration_ms),
        input_message_id: Set(t.input_message_id.map(i64::from)),
        output_message_id: Set(reply_message_id.map(i64::from)),
        error: Set(t.error.clone()),
        llm_calls: Set(t.llm_calls),
        created_at: Set(now),
        spans: Set(spans),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let mut rows = Vec::new();
    for u in usage {
        let unit = unit_price(&priced, &u);
        let cost_e8 = unit.map_or(0, |p| pricing::cost_e8(u.quantity, p));
        tx.usage().spend(
            t.team_id.0,
            now,
            Some(t.chatbot_id.0),
            &u.model,
            u.quantity,
            cost_e8,
        );
        rows.push(usage_record::ActiveModel {
            team_id: Set(t.team_id.0),
            trace_id: Set(Some(tr.id)),
            session_id: Set(Some(t.session_id.0)),
            chatbot_id: Set(Some(t.chatbot_id.0)),
            participant_id: Set(Some(t.participant_id.0)),
            source: Set("chat".into()),
            service_kind: Set(u.kind.as_str().into()),
            provider_kind: Set(u.provider_kind),
            model_name: Set(u.model),
            quantity: Set(u.quantity),
            unit_price_e8: Set(unit),
            cost_e8: Set(cost_e8),
            currency: Set("USD".into()),
            confidence: Set("exact".into()),
            created_at: Set(now),
            ..Default::default()
        });
    }
    if !rows.is_empty() {
        usage_record::Entity::insert_many(rows).exec(txn).await?;
    }
    // The session's activity, in one statement with its activation when
    // there can be one.
    let activity = |q: sea_orm::UpdateMany<session::Entity>| {
        q.col_expr(session::Column::LastActivityAt, Expr::value(now))
            .col_expr(session::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                session::Column::FirstActivityAt,
                sea_orm::ExprTrait::if_null(Expr::col(session::Column::FirstActivityAt), now),
            )
    };
    // Only a session still in setup becomes active (not one that consent
    // holds as pending, nor one that has ended).
    let activated = t.error.is_none()
        && t.session_status == SessionStatus::Setup
        && sessions::counts::move_status(
            &tx,
            t.session_id,
            SessionStatus::Setup,
            SessionStatus::Active,
            activity,
        )
        .await?
        .is_some();
    if !activated {
        activity(session::Entity::update_many())
            .filter(session::Column::Id.eq(t.session_id))
            .exec(txn)
            .await?;
    }
    // A failed turn changes nothing but its own record.
    if t.error.is_none() {
        apply_changes(&mut tx, &t, reply_message_id).await?;
    }
    tx.commit().await?;
    Ok(Recorded {
        reply_message_id,
        trace_id: tr.id,
    })
}

/// The turn's `new_human_message` (its input) and `new_bot_message` (its
/// reply) triggers, with the turn.
async fn fire_message_events(
    tx: &crate::Tx<'_>,
    t: &TurnOutcome,
    reply: Option<MessageId>,
) -> Result<()> {
    use crate::event_triggers::{EventKind, Happened, fire};
    if t.triggers.is_empty() {
        return Ok(());
    }
    let happened = |kind, reference: MessageId| Happened {
        team_id: t.team_id,
        session_id: t.session_id,
        chatbot_row: t.chatbot_id,
        triggers: &t.triggers,
        kind,
        ended_by: None,
        reference: reference.0.to_string(),
    };
    if let Some(mid) = t.input_message_id {
        fire(tx, happened(EventKind::NewHumanMessage, mid)).await?;
        if t.published {
            crate::timeouts::arm(
                tx,
                t.team_id,
                t.session_id,
                t.chatbot_id,
                &t.triggers,
                mid,
                // The message came in when the turn began.
                store::now() - chrono::Duration::milliseconds(t.duration_ms),
            )
            .await?;
        }
    }
    if let Some(mid) = reply.filter(|_| !t.from_event) {
        fire(tx, happened(EventKind::NewBotMessage, mid)).await?;
    }
    Ok(())
}

/// One item per (provider, model, kind), as the original's tracer writes them.
fn merge_usage(items: &[UsageItem]) -> Vec<UsageItem> {
    let mut merged: Vec<UsageItem> = Vec::new();
    for u in items.iter().filter(|u| u.quantity > 0) {
        match merged
            .iter_mut()
            .find(|m| m.provider_kind == u.provider_kind && m.model == u.model && m.kind == u.kind)
        {
            Some(m) => m.quantity += u.quantity,
            None => merged.push(u.clone()),
        }
    }
    merged
}

type Priced = Vec<(String, String, pricing::Prices)>;

/// The prices of every model used: one lookup per model, whatever the number
/// of kinds it used.
async fn price(
    domain: &Domain,
    epoch: Option<crate::catalog::Epoch>,
    team_id: TeamId,
    usage: &[UsageItem],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Priced> {
    let mut priced: Priced = Vec::new();
    for u in usage {
        if !priced
            .iter()
            .any(|(p, m, _)| *p == u.provider_kind && *m == u.model)
        {
            let (p, m) = (&u.provider_kind, &u.model);
            let x = match epoch {
                Some(at) => {
                    let rules = domain
                        .catalog
                        .price_rules(domain, at, team_id, p, m)
                        .await?;
                    pricing::prices_in(&rules, p, m, now)
                }
                None => pricing::prices(domain, team_id, p, m, now).await?,
            };
            priced.push((p.clone(), m.clone(), x));
        }
    }
    Ok(priced)
}

fn unit_price(priced: &Priced, u: &UsageItem) -> Option<i64> {
    priced
        .iter()
        .find(|(p, m, _)| *p == u.provider_kind && *m == u.model)
        .and_then(|(_, _, x)| x.get(u.kind))
}

/// The spans with their tokens and cost, as the trace stores them.
fn priced_spans(spans: &[Span], priced: &Priced) -> Option<Value> {
    if spans.is_empty() {
        return None;
    }
    let spans: Vec<Span> = spans
        .iter()
        .map(|s| {
            let mut s = s.clone();
            for u in &s.usage {
                match u.kind {
                    ServiceKind::Output => s.output_tokens += u.quantity,
                    _ => s.input_tokens += u.quantity,
                }
                s.cost_e8 += unit_price(priced, u).map_or(0, |p| pricing::cost_e8(u.quantity, p));
            }
            s
        })
        .collect();
    serde_json::to_value(spans).ok()
}

/// What a successful turn changes besides its reply, in its transaction:
/// participant data, session state, reply tags, node histories, reminders,
/// emails to send, and the session's end when the chatbot ended it (last, so
/// the turn's own status update cannot undo it).
async fn apply_changes(
    tx: &mut crate::Tx<'_>,
    t: &TurnOutcome,
    reply: Option<MessageId>,
) -> Result<()> {
    let c = &t.changes;
    if let (Some(change), Some(family)) = (&c.participant_data, c.family_id) {
        crate::participants::data::merge(&*tx, t.team_id, t.participant_id, family, change).await?;
    }
    if !c.session_state.is_empty() {
        sessions::merge_state(&*tx, t.session_id, c.session_state.clone()).await?;
    }
    if let Some(mid) = reply {
        for tag in &c.reply_tags {
            crate::tags::tag_message(
                &*tx,
                t.team_id,
                mid.0,
                tag,
                crate::tags::BOT_RESPONSE_CATEGORY,
            )
            .await?;
        }
    }
    for h in &c.histories {
        histories::append(&*tx, t.session_id, h).await?;
    }
    if !c.session_tags.is_empty() {
        crate::tags::add_to_session(&*tx, t.team_id, t.session_id.0, &c.session_tags, None).await?;
    }
    if let Some(family) = c.family_id {
        for s in &c.schedules {
            crate::schedules::apply(&*tx, t.participant_id, family, s).await?;
        }
    }
    for e in &c.emails {
        tx.enqueue(
            crate::jobs::NewJob::<crate::jobs::EmailSend>::new(e.clone())
                .team(t.team_id)
                .session(t.session_id),
        )
        .await?;
    }
    if c.end_session {
        sessions::end(tx, t.team_id, t.session_id, crate::events::EndedBy::Bot).await?;
    }
    Ok(())
}

/// Usage of a session, per model: (model, cost e8, tokens), plus the total.
pub async fn session_usage<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    session_id: SessionId,
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
