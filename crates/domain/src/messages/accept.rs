//! A chat-widget message: persisted with its attachments, and its turn
//! enqueued, in one transaction; the task id is what the client polls.

use serde_json::{Value, json};
use uuid::Uuid;

use super::MessageRole;
use crate::jobs::{ChatTurn, ChatTurnPayload, NewJob};
use crate::sessions::{Session, SessionStatus};
use crate::{Domain, Error, Result};

#[derive(Debug, Clone)]
pub struct Incoming {
    pub text: String,
    pub context: Option<Value>,
    pub attachment_ids: Vec<i64>,
    pub version_number: Option<i32>,
}

/// Persists the human message and enqueues its turn in one transaction; the
/// task id is what the client polls. A version may be chosen by members only.
pub async fn accept(
    domain: &Domain,
    session: &Session,
    session_status: SessionStatus,
    member: bool,
    m: Incoming,
) -> Result<Uuid> {
    if session_status == SessionStatus::Complete {
        return Err(Error::SessionEnded);
    }
    let db = &domain.db.write;
    if let Some(n) = m.version_number {
        if !member {
            return Err(Error::VersionRequiresMember);
        }
        let public = crate::chatbots::public_id_of(db, session.chatbot_id.0).await?;
        crate::chatbots::resolve(db, session.team_id, public, Some(n))
            .await
            .map_err(|_| Error::not_found(format!("Experiment with version {n} not found")))?;
    }
    let mut ids = m.attachment_ids.clone();
    ids.sort_unstable();
    let files = crate::files::uploads::uploads_of(domain, session, &ids).await?;
    // Duplicates count too: every id must name its own file.
    if files.len() != m.attachment_ids.len() {
        return Err(Error::InvalidAttachments);
    }
    let tx = domain.begin().await?;
    let metadata = if ids.is_empty() {
        json!({})
    } else {
        json!({"ocs_attachment_file_ids": ids})
    };
    let mid = super::insert(
        &tx,
        session.team_id,
        session.id,
        MessageRole::Human,
        &m.text,
        metadata,
    )
    .await?;
    for f in &files {
        crate::files::uploads::attach_upload(&tx, session.id, *f).await?;
    }
    let job = NewJob::<ChatTurn>::new(ChatTurnPayload {
        session_id: session.id,
        message_id: mid,
        text: m.text,
        version: m.version_number,
        context: m.context,
    })
    .team(session.team_id)
    .session(session.id);
    let task = tx.enqueue(job).await?;
    tx.commit().await?;
    Ok(task)
}
