//! Who may use a session-bound chat endpoint (spec §3.4): a team API key;
//! else, for token sessions, a valid unexpired session token; for embed-key
//! sessions, the session channel's own embed key from an allowed origin.
//! A session token expires with the session's age (the channel's lifetime,
//! default 7 days), as the original's current rule.

use sea_orm::EntityTrait;
use store::entity::{chatbot, participant, session};

use super::{Session, SessionStatus, by_external_id_any_team};
use crate::channels::widget::{self, AuthLevel};
use crate::conn::Reads;
use crate::{Domain, Error, Result};

/// What the caller presented, as the API layer read it from the request.
#[derive(Debug, Clone, Default)]
pub struct Credentials<'a> {
    pub api_key: Option<&'a str>,
    /// A team member the API layer already authenticated (a console sign-in).
    pub member: Option<crate::auth::AuthContext>,
    pub embed_key: Option<&'a str>,
    /// The host of the request's `Origin` (else `Referer`).
    pub origin_host: Option<String>,
    pub session_token: Option<&'a str>,
}

/// What the caller means to do with the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Poll messages, read a task's state.
    Read,
    /// Send a message or upload a file: refused to read-only keys and on a
    /// disabled channel (with its disabled message).
    Write,
}

/// A session the caller may use.
#[derive(Debug, Clone)]
pub struct Access {
    pub session: Session,
    pub status: SessionStatus,
    /// A team member (API key) rather than the widget's participant.
    pub member: bool,
    pub participant_identifier: String,
}

struct Facts {
    created_at: chrono::DateTime<chrono::Utc>,
    token_required: bool,
    participant_identifier: String,
    chatbot_live: bool,
}

async fn facts(db: &impl Reads, session: &Session) -> Result<Option<Facts>> {
    let db = db.reader();
    let Some(s) = session::Entity::find_by_id(session.id.0).one(db).await? else {
        return Ok(None);
    };
    let participant_identifier = participant::Entity::find_by_id(s.participant_id)
        .one(db)
        .await?
        .map(|p| p.identifier)
        .unwrap_or_default();
    let chatbot_live = chatbot::Entity::find_by_id(s.chatbot_id)
        .one(db)
        .await?
        .is_some_and(|c| !c.is_archived);
    Ok(Some(Facts {
        created_at: s.created_at,
        token_required: s.session_token_required,
        participant_identifier,
        chatbot_live,
    }))
}

/// Decides whether `creds` admit the caller to the session `external_id`
/// for `usage`.
pub async fn check(
    domain: &Domain,
    external_id: &str,
    creds: &Credentials<'_>,
    usage: Use,
) -> Result<Access> {
    let session = by_external_id_any_team(domain, external_id)
        .await?
        .ok_or(Error::SessionAccessDenied)?;
    let f = facts(domain, &session)
        .await?
        .ok_or(Error::SessionAccessDenied)?;
    if !f.chatbot_live {
        return Err(Error::SessionAccessDenied);
    }
    let status: SessionStatus = session.status;
    let grant = |member: bool| Access {
        session: session.clone(),
        status,
        member,
        participant_identifier: f.participant_identifier.clone(),
    };
    let db = &domain.db.read;
    // A member's read needs nothing of the channel: it costs no query.
    let channel = match session.channel_id {
        Some(id) if usage == Use::Write || (creds.api_key.is_none() && creds.member.is_none()) => {
            widget::by_row_id(db, id.0).await?
        }
        _ => None,
    };
    if usage == Use::Write
        && let Some(ch) = channel.as_ref().filter(|c| !c.enabled)
    {
        let msg = ch
            .disabled_message
            .clone()
            .unwrap_or_else(|| super::start::UNAVAILABLE.into());
        return Err(Error::ChannelUnavailable(msg));
    }
    let member = match (creds.api_key, &creds.member) {
        (Some(key), _) => Some(crate::auth::authenticate_api_key(db, key).await?),
        (None, Some(ctx)) => Some(ctx.clone()),
        (None, None) => None,
    };
    if let Some(ctx) = member {
        if ctx.team_id != session.team_id || (usage == Use::Write && ctx.read_only) {
            return Err(Error::PermissionDenied);
        }
        return Ok(grant(true));
    }
    // A key that is sent must be valid and from an allowed origin, whatever the session needs.
    let keyed = match creds.embed_key {
        Some(k) => {
            let ch = widget::by_key(db, k)
                .await?
                .filter(|c| c.chatbot_row_id == session.chatbot_id.0)
                .ok_or(Error::EmbedKeyMismatch)?;
            match &creds.origin_host {
                Some(host) if widget::domain_allowed(&ch.allowed_domains, host) => Some(ch),
                _ => return Err(Error::PermissionDenied),
            }
        }
        None => None,
    };
    if f.token_required {
        let token = creds.session_token.ok_or(Error::SessionTokenRequired)?;
        if domain
            .session_tokens
            .verify(token, &session.external_id)
            .is_err()
        {
            return Err(Error::SessionTokenInvalid);
        }
        let lifetime = channel
            .as_ref()
            .map_or(widget::DEFAULT_TOKEN_LIFETIME_SECS, |c| {
                c.token_lifetime_secs
            });
        if (chrono::Utc::now() - f.created_at).num_seconds() > lifetime {
            return Err(Error::SessionExpired);
        }
        return Ok(grant(false));
    }
    // Embed-key sessions: the key of this session's own channel, from an allowed origin.
    match (keyed, &channel) {
        (Some(k), Some(own)) if k.row_id == own.row_id && own.auth_level == AuthLevel::EmbedKey => {
            Ok(grant(false))
        }
        _ => Err(Error::PermissionDenied),
    }
}
