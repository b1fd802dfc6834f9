//! Opening sessions: for a chat-widget caller (`/api/chat/start/`) once the
//! API layer has decided who it is (the chatbot's seed message queued with it), and for a team's integration
//! (`POST /api/sessions/`, seeded messages, no bot runs).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use store::entity::{chatbot, participant, session};
use uuid::Uuid;

use super::{NewSession, SessionStatus, Summary};
use crate::channels::widget::{AuthLevel, WidgetChannel};
use crate::channels::{self, Platform};
use crate::ids::{TeamId, UserId};
use crate::messages::{self, MessageRole};
use crate::participants::{self, data as pdata};
use crate::{Domain, Error, Result};

/// Who is starting a session, as the API layer established it.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A team API key: a server-side integration, trusted like a team member.
    Member {
        team_id: TeamId,
        user_id: Option<UserId>,
    },
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
    pub team_id: TeamId,
    /// The chatbot shown in the response (the working version, or the selected snapshot).
    pub chatbot_public_id: Uuid,
    pub participant_identifier: String,
    pub participant_remote_id: String,
}

/// Whether a chatbot accepts sessions with no credential at all (off by default).
pub fn is_public(config: &Value) -> bool {
    config
        .get("public_chat")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// What a disabled channel answers when it has no message of its own.
pub const UNAVAILABLE: &str = "This chatbot is currently unavailable.";

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
            return Err(Error::ChatAccessDenied);
        }
        _ => {}
    }
    let member = matches!(caller, Caller::Member { .. });
    if s.version_number.is_some() && !member {
        return Err(Error::VersionRequiresMember);
    }
    // The chatbot in the response: the working version unless another version was chosen.
    let shown = match s.version_number {
        None | Some(0) => head.public_id,
        Some(n) if n == head.version_number => head.public_id,
        Some(n) => {
            crate::chatbots::resolve(db, TeamId(head.team_id), head.public_id, Some(n))
                .await
                .map_err(|_| Error::not_found(format!("Experiment with version {n} not found")))?
                .public_id
        }
    };
    let (channel_id, platform, level, enabled, disabled_message) = match &caller {
        Caller::Widget(ch) => (
            crate::ids::ChannelId(ch.row_id),
            Platform::EmbeddedWidget,
            Some(ch.auth_level),
            ch.enabled,
            ch.disabled_message.clone(),
        ),
        _ => (
            channels::api_channel(domain, TeamId(head.team_id)).await?,
            Platform::Api,
            None,
            true,
            None,
        ),
    };
    if !enabled {
        let msg = disabled_message.unwrap_or_else(|| UNAVAILABLE.into());
        return Err(Error::ChannelUnavailable(msg));
    }
    let token_required = level != Some(AuthLevel::EmbedKey);
    let tx = domain.begin().await?;
    let p = match &caller {
        Caller::Member { team_id, user_id } => {
            let identifier = match (&s.participant_remote_id, user_id) {
                (Some(r), _) => r.clone(),
                (None, Some(u)) => crate::users::email(&tx, *u).await?,
                (None, None) => {
                    return Err(Error::field(
                        "participant_remote_id",
                        "This field is required.",
                    ));
                }
            };
            participants::get_or_create(&tx, *team_id, Platform::Api, &identifier, *user_id).await?
        }
        _ => {
            participants::create_anonymous(
                &tx,
                TeamId(head.team_id),
                platform,
                s.participant_remote_id.as_deref().unwrap_or_default(),
            )
            .await?
        }
    };
    if let Some(name) = &s.participant_name {
        participants::set_name(&tx, p.id, name).await?;
        let family = crate::ids::ChatbotId(head.id);
        let mut data = pdata::get(&tx, p.id, family).await?;
        if data.get("name").and_then(Value::as_str) != Some(name.as_str()) {
            if let Some(o) = data.as_object_mut() {
                o.insert("name".into(), json!(name));
            }
            pdata::set(&tx, TeamId(head.team_id), p.id, family, &data).await?;
        }
    }
    let state = match (&caller, &s.session_data) {
        (Caller::Member { .. }, Some(d)) if !d.is_empty() => Value::Object(d.clone()),
        _ => json!({}),
    };
    let session = super::create(
        &tx,
        NewSession {
            team_id: TeamId(head.team_id),
            participant_id: p.id,
            chatbot_id: crate::ids::ChatbotId(head.id),
            channel_id: Some(channel_id),
            platform: Some(platform),
            version_number: s.version_number.unwrap_or(0),
            state,
            epoch: None,
        },
    )
    .await?;
    {
        let mut metadata = json!({"embed_source": s.embed_source});
        if let Some(n) = s.version_number.filter(|n| *n != 0) {
            metadata["experiment_version"] = json!(n);
        }
        // Created in setup just above, in this transaction: no one else
        // can have moved it.
        super::counts::move_status(
            &tx,
            session.id,
            SessionStatus::Setup,
            SessionStatus::Active,
            |q| {
                q.col_expr(
                    session::Column::SessionTokenRequired,
                    Expr::value(token_required),
                )
                .col_expr(session::Column::Metadata, Expr::value(metadata))
            },
        )
        .await?
        .ok_or_else(|| Error::internal("a new session left setup before it started"))?;
    }
    seed(&tx, &session, &p.identifier).await?;
    tx.commit().await?;
    let remote_id = participant::Entity::find_by_id(p.id.0)
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
        team_id: TeamId(head.team_id),
        chatbot_public_id: shown,
        participant_identifier: p.identifier,
        participant_remote_id: remote_id,
    })
}

/// Queues the chatbot's seed message in a session that starts without a
/// question to answer (unless the allowlist keeps the participant out: they
/// hear its refusal when they write).
async fn seed(tx: &crate::Tx<'_>, session: &super::Session, identifier: &str) -> Result<()> {
    use crate::onboarding;
    let Some(v) = crate::versions::session_version(tx, session.chatbot_id).await? else {
        return Ok(());
    };
    let ob = onboarding::of_config(&v.config);
    let Some(seed) = &ob.seed else {
        return Ok(());
    };
    if onboarding::refusal(tx, session.team_id, &ob, identifier)
        .await?
        .is_none()
    {
        onboarding::say_seed(tx, session.team_id, session.id, seed).await?;
    }
    Ok(())
}

/// Input of `POST /api/sessions/`, already validated for shape.
#[derive(Debug, Clone)]
pub struct Create {
    pub experiment: Uuid,
    pub participant: Option<String>,
    pub messages: Vec<(MessageRole, String)>,
    pub state: Value,
}

/// Creates a session on the team's API channel with seeded messages, in one
/// transaction; no bot runs. A chatbot of another team is a 404; one that
/// exists nowhere is a field error (the original's distinction).
pub async fn create_seeded(
    domain: &Domain,
    team_id: TeamId,
    user_id: Option<UserId>,
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
    if TeamId(bot.team_id) != team_id {
        return Err(Error::not_found("Experiment not found"));
    }
    let identifier = match (c.participant, user_id) {
        (Some(p), _) => p,
        (None, Some(u)) => crate::users::email(domain, u).await?,
        (None, None) => return Err(Error::ParticipantRequired),
    };
    let tx = domain.begin().await?;
    let p = participants::get_or_create(&tx, team_id, Platform::Api, &identifier, user_id).await?;
    let channel = channels::api_channel(&tx, team_id).await?;
    let s = super::create(
        &tx,
        NewSession {
            team_id,
            participant_id: p.id,
            chatbot_id: crate::ids::ChatbotId(bot.id),
            channel_id: Some(channel),
            platform: None,
            version_number: 0,
            state: c.state,
            epoch: None,
        },
    )
    .await?;
    for (role, content) in &c.messages {
        messages::insert(&tx, team_id, s.id, *role, content, json!({})).await?;
    }
    tx.commit().await?;
    super::summary(domain, team_id, &s.external_id).await
}
