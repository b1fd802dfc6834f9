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
/// A participant the chatbot's allowlist keeps out is answered with its
/// refusal, and their message is not stored.
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
    if let Some(refusal) = refusal_for(&tx, session).await? {
        let job = NewJob::<ChatTurn>::new(ChatTurnPayload {
            session_id: session.id,
            message_id: None,
            text: m.text,
            version: None,
            context: None,
            refusal: Some(refusal),
        })
        .team(session.team_id)
        .session(session.id);
        let task = tx.enqueue(job).await?;
        tx.commit().await?;
        return Ok(task);
    }
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
        message_id: Some(mid),
        text: m.text,
        version: m.version_number,
        context: m.context,
        refusal: None,
    })
    .team(session.team_id)
    .session(session.id);
    let task = tx.enqueue(job).await?;
    tx.commit().await?;
    Ok(task)
}

/// What the chatbot's allowlist tells this session's participant, if it keeps them out.
async fn refusal_for(tx: &crate::Tx<'_>, session: &Session) -> Result<Option<String>> {
    let Some(v) = crate::versions::session_version(tx, session.chatbot_id).await? else {
        return Ok(None);
    };
    let onboarding = crate::onboarding::of_config(&v.config);
    if onboarding.allowlist.is_none() {
        return Ok(None);
    }
    let identifier = crate::participants::get(tx, session.participant_id)
        .await?
        .map(|p| p.identifier)
        .unwrap_or_default();
    crate::onboarding::refusal(tx, session.team_id, &onboarding, &identifier).await
}
