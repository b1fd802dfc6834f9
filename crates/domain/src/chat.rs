//! The chat widget API's domain side: starting sessions (after the API layer
//! has decided who the caller is), accepting messages as durable jobs, and
//! staging uploads.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde_json::{Value, json};
use store::entity::{chatbot, file, participant};
use uuid::Uuid;

use crate::conversations::{self as conv, NewSession, role};
use crate::jobs::{self, NewJob};
use crate::widget::{AuthLevel, WidgetChannel};
use crate::{Domain, Error, Result};

pub const CHAT_TURN_JOB: &str = "chat.turn";
pub const UPLOAD_PURPOSE: &str = "message_media";
/// Unattached uploads expire after a day.
pub const UPLOAD_TTL_HOURS: i64 = 24;

/// Who is starting a session, as the API layer established it.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A team API key: a server-side integration, trusted like a team member.
    Member { team_id: i64, user_id: Option<i64> },
    /// The widget, admitted by an embed key and origin.
    Widget(WidgetChannel),
    /// Nobody, allowed only for chatbots configured public.
    Anonymous,
}

#[derive(Debug, Clone)]
pub struct Start {
    pub chatbot_id: Uuid,
    pub version_number: Option<i32>,
    pub session_data: Option<serde_json::Map<String, Value>>,
    pub participant_remote_id: Option<String>,
    pub participant_name: Option<String>,
    pub embed_source: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Started {
    pub session_external_id: String,
    pub session_token: Option<String>,
    pub team_id: i64,
    /// The chatbot shown in the response (the working version, or the selected snapshot).
    pub chatbot_public_id: Uuid,
    pub participant_identifier: String,
    pub participant_remote_id: String,
}

fn chat_error(status: u16, msg: &str) -> Error {
    Error::Body(status, json!({"error": msg}))
}

/// Whether a chatbot accepts sessions with no credential at all (off by default).
pub fn is_public(config: &Value) -> bool {
    config
        .get("public_chat")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Starts a session for an admitted caller. Version selection needs a member.
pub async fn start(domain: &Domain, caller: Caller, s: Start) -> Result<Started> {
    let db = &domain.db.write;
    let mut q = chatbot::Entity::find()
        .filter(chatbot::Column::PublicId.eq(s.chatbot_id))
        .filter(chatbot::Column::WorkingVersionId.is_null())
        .filter(chatbot::Column::IsArchived.eq(false));
    match &caller {
        Caller::Member { team_id, .. } => q = q.filter(chatbot::Column::TeamId.eq(*team_id)),
        Caller::Widget(ch) => q = q.filter(chatbot::Column::TeamId.eq(ch.team_id)),
        Caller::Anonymous => {}
    }
    let head = q
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(crate::chatbots::NOT_FOUND))?;
    match &caller {
        Caller::Widget(ch) if ch.chatbot_row_id != head.id => {
            return Err(Error::Unauthenticated("Invalid widget embed key"));
        }
        Caller::Anonymous if !is_public(&head.config) => {
            return Err(Error::Body(
                401,
                json!({"error": "Authentication required to chat with this chatbot", "code": "chat_access_denied"}),
            ));
        }
        _ => {}
    }
    let member = matches!(caller, Caller::Member { .. });
    if s.version_number.is_some() && !member {
        return Err(chat_error(403, "Version number requires authentication"));
    }
    // The chatbot in the response: the working version unless another version was chosen.
    let shown = match s.version_number {
        None | Some(0) => head.public_id,
        Some(n) if n == head.version_number => head.public_id,
        Some(n) => {
            crate::chatbots::resolve(db, head.team_id, head.public_id, Some(n))
                .await
                .map_err(|_| Error::not_found(format!("Experiment with version {n} not found")))?
                .public_id
        }
    };
    let (channel_id, platform, level, enabled, disabled_message) = match &caller {
        Caller::Widget(ch) => (
            ch.row_id,
            crate::widget::PLATFORM.to_string(),
            Some(ch.auth_level),
            ch.enabled,
            ch.disabled_message.clone(),
        ),
        _ => (
            conv::api_channel(db, head.team_id).await?,
            "api".to_string(),
            None,
            true,
            None,
        ),
    };
    if !enabled {
        let msg =
            disabled_message.unwrap_or_else(|| "This chatbot is currently unavailable.".into());
        return Err(chat_error(403, &msg));
    }
    let token_required = level != Some(AuthLevel::EmbedKey);
    let txn = db.begin().await?;
    let p = match &caller {
        Caller::Member { team_id, user_id } => {
            let identifier = match (&s.participant_remote_id, user_id) {
                (Some(r), _) => r.clone(),
                (None, Some(u)) => conv::user_email(&txn, *u).await?,
                (None, None) => {
                    return Err(Error::field(
                        "participant_remote_id",
                        "This field is required.",
                    ));
                }
            };
            conv::participant_get_or_create(&txn, *team_id, "api", &identifier, *user_id).await?
        }
        _ => {
            let id = Uuid::new_v4();
            let now = store::now();
            participant::ActiveModel {
                public_id: Set(id),
                team_id: Set(head.team_id),
                platform: Set(platform.clone()),
                identifier: Set(format!("anon:{id}")),
                name: Set("Anonymous".into()),
                remote_id: Set(s.participant_remote_id.clone().unwrap_or_default()),
                user_id: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?
            .into()
        }
    };
    if let Some(name) = &s.participant_name {
        participant::Entity::update_many()
            .col_expr(participant::Column::Name, Expr::value(name.clone()))
            .filter(participant::Column::Id.eq(p.id))
            .exec(&txn)
            .await?;
        let mut data = conv::participant_data(&txn, p.id, head.id).await?;
        if data.get("name").and_then(Value::as_str) != Some(name.as_str()) {
            if let Some(o) = data.as_object_mut() {
                o.insert("name".into(), json!(name));
            }
            conv::set_participant_data(&txn, head.team_id, p.id, head.id, &data).await?;
        }
    }
    let state = match (&caller, &s.session_data) {
        (Caller::Member { .. }, Some(d)) if !d.is_empty() => Value::Object(d.clone()),
        _ => json!({}),
    };
    let session = conv::create_session(
        &txn,
        NewSession {
            team_id: head.team_id,
            participant_id: p.id,
            chatbot_row_id: head.id,
            channel_id: Some(channel_id),
            platform: Some(platform),
            version_number: s.version_number.unwrap_or(0),
            state,
        },
    )
    .await?;
    {
        use store::entity::session;
        let mut metadata = json!({"embed_source": s.embed_source});
        if let Some(n) = s.version_number.filter(|n| *n != 0) {
            metadata["experiment_version"] = json!(n);
        }
        session::Entity::update_many()
            .col_expr(session::Column::Status, Expr::value(conv::status::ACTIVE))
            .col_expr(
                session::Column::SessionTokenRequired,
                Expr::value(token_required),
            )
            .col_expr(session::Column::Metadata, Expr::value(metadata))
            .filter(session::Column::Id.eq(session.id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    let remote_id = participant::Entity::find_by_id(p.id)
        .one(&domain.db.write)
        .await?
        .map(|m| m.remote_id)
        .unwrap_or_default();
    Ok(Started {
        session_token: if token_required {
            Some(domain.session_tokens.issue(&session.external_id)?)
        } else {
            None
        },
        session_external_id: session.external_id,
        team_id: head.team_id,
        chatbot_public_id: shown,
        participant_identifier: p.identifier,
        participant_remote_id: remote_id,
    })
}

#[derive(Debug, Clone)]
pub struct Incoming {
    pub text: String,
    pub context: Option<Value>,
    pub attachment_ids: Vec<i64>,
    pub version_number: Option<i32>,
}

/// Persists the human message and enqueues its turn in one transaction; the
/// task id is what the client polls.
pub async fn accept_message(
    domain: &Domain,
    session: &conv::Session,
    session_status: &str,
    member: bool,
    m: Incoming,
) -> Result<Uuid> {
    if session_status == conv::status::COMPLETE {
        return Err(chat_error(400, "Session has ended"));
    }
    let db = &domain.db.write;
    if let Some(n) = m.version_number {
        if !member {
            return Err(chat_error(403, "Version number requires authentication"));
        }
        let public = crate::chatbots::public_id_of(db, session.chatbot_id).await?;
        crate::chatbots::resolve(db, session.team_id, public, Some(n))
            .await
            .map_err(|_| Error::not_found(format!("Experiment with version {n} not found")))?;
    }
    let mut ids = m.attachment_ids.clone();
    ids.sort_unstable();
    let files = if ids.is_empty() {
        Vec::new()
    } else {
        file::Entity::find()
            .filter(file::Column::TeamId.eq(session.team_id))
            .filter(file::Column::Id.is_in(ids.clone()))
            .filter(file::Column::Purpose.eq(UPLOAD_PURPOSE))
            .filter(file::Column::IsArchived.eq(false))
            .all(db)
            .await?
            .into_iter()
            .filter(|f| {
                f.metadata
                    .as_ref()
                    .and_then(|md| md.get("session_id"))
                    .and_then(Value::as_str)
                    == Some(session.external_id.as_str())
            })
            .collect()
    };
    // Duplicates count too: every id must name its own file.
    if files.len() != m.attachment_ids.len() {
        return Err(chat_error(400, "One or more file IDs are invalid"));
    }
    let txn = db.begin().await?;
    let metadata = if ids.is_empty() {
        json!({})
    } else {
        json!({"ocs_attachment_file_ids": ids})
    };
    let mid = conv::insert_message(
        &txn,
        session.team_id,
        session.id,
        role::HUMAN,
        &m.text,
        metadata,
    )
    .await?;
    for f in &files {
        crate::files::attach_to_session(&txn, session.id, f.id, "ocs_attachments").await?;
        file::Entity::update_many()
            .col_expr(
                file::Column::ExpiresAt,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(file::Column::Id.eq(f.id))
            .exec(&txn)
            .await?;
    }
    let mut job = NewJob::new(
        CHAT_TURN_JOB,
        json!({"session_id": session.id, "message_id": mid, "text": m.text, "version": m.version_number, "context": m.context}),
    );
    job.team_id = Some(session.team_id);
    job.session_id = Some(session.id);
    job.max_attempts = 3;
    let task = jobs::enqueue(&txn, job).await?;
    txn.commit().await?;
    domain.wake_workers(1);
    Ok(task)
}

/// One upload whose bytes are already in the object store, validated.
#[derive(Debug, Clone)]
pub struct Staged {
    pub key: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
}

/// Records a batch of stored uploads for a session in one transaction; on
/// failure the stored objects are removed, so a batch lands whole or not at all.
pub async fn record_uploads(
    domain: &Domain,
    session: &conv::Session,
    uploaded_by: &str,
    participant_name: &str,
    participant_remote_id: &str,
    uploads: Vec<Staged>,
) -> Result<Vec<crate::files::StoredFile>> {
    let result = async {
        let txn = domain.db.write.begin().await?;
        let mut out = Vec::new();
        let expires = store::now() + chrono::Duration::hours(UPLOAD_TTL_HOURS);
        for u in &uploads {
            let f = crate::files::record(
                &txn,
                session.team_id,
                &u.name,
                &u.key,
                &u.content_type,
                u.size,
                UPLOAD_PURPOSE,
            )
            .await?;
            file::Entity::update_many()
                .col_expr(file::Column::ExpiresAt, Expr::value(expires))
                .col_expr(
                    file::Column::Metadata,
                    Expr::value(json!({
                        "session_id": session.external_id,
                        "uploaded_by": uploaded_by,
                        "participant_name": participant_name,
                        "participant_remote_id": participant_remote_id,
                    })),
                )
                .filter(file::Column::Id.eq(f.id))
                .exec(&txn)
                .await?;
            out.push(f);
        }
        txn.commit().await?;
        Ok::<_, Error>(out)
    }
    .await;
    if result.is_err() {
        for u in &uploads {
            domain.files.delete(&u.key).await;
        }
    }
    result
}

/// Archives uploads nobody attached before they expired.
pub async fn expire_uploads(domain: &Domain) -> Result<u64> {
    let res = file::Entity::update_many()
        .col_expr(file::Column::IsArchived, Expr::value(true))
        .filter(file::Column::ExpiresAt.lt(store::now()))
        .filter(file::Column::IsArchived.eq(false))
        .exec(&domain.db.write)
        .await?;
    Ok(res.rows_affected)
}
