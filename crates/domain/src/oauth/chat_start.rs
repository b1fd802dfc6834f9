//! Admission to the chat API's `start/` by an OAuth2 access token (the
//! contract's `chatOAuth2`, spec §3.3): a machine application's token with
//! `chat:start`, of the chatbot's team, listed for the chatbot, presented
//! for a chatbot that has a widget channel in `oauth` mode whose origin rule
//! the request meets. Every refusal is the same 401, so nothing is learned
//! about which check failed.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use store::entity::{channel, chatbot};
use uuid::Uuid;

use super::Scope;
use crate::channels::widget::{self, CredentialMode, WidgetChannel};
use crate::conn::Reads;
use crate::ids::ChatbotId;
use crate::{Error, Result};

/// The widget channel a token admits the request through; `None` when the
/// id is no chatbot's working version (the authenticator steps aside and
/// the request goes on to be a 404).
pub async fn admit(
    db: &impl Reads,
    chatbot_id: Uuid,
    token: &str,
    origin_host: Option<&str>,
) -> Result<Option<WidgetChannel>> {
    let db = db.reader();
    let Some(head) = chatbot::Entity::find()
        .filter(chatbot::Column::PublicId.eq(chatbot_id))
        .filter(chatbot::Column::WorkingVersionId.is_null())
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let rows = channel::Entity::find()
        .filter(channel::Column::ChatbotId.eq(head.id))
        .filter(channel::Column::Platform.eq(widget::PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .order_by_asc(channel::Column::Id)
        .all(db)
        .await?;
    let mut oauth_channels = Vec::new();
    for r in rows {
        if let Some(ch) = widget::by_row_id(db, r.id).await?
            && ch.credential_mode == CredentialMode::OAuth
        {
            oauth_channels.push(ch);
        }
    }
    let Some(ch) = oauth_channels.into_iter().next() else {
        return Err(Error::ChatAccessDenied);
    };
    let live = super::tokens::live(db, token)
        .await?
        .ok_or(Error::ChatAccessDenied)?;
    let admitted = live.grant.machine
        && live.team_id.0 == head.team_id
        && live.grant.scopes.contains(Scope::ChatStart)
        && super::apps::allows_chatbot(db, live.grant.app_id, ChatbotId(head.id)).await?
        && origin_allowed(&ch, origin_host);
    if admitted {
        Ok(Some(ch))
    } else {
        Err(Error::ChatAccessDenied)
    }
}

/// No allowed domains: server-only, so no origin may be sent. Some
/// (even `*`): an origin is required and must match.
fn origin_allowed(ch: &WidgetChannel, origin_host: Option<&str>) -> bool {
    match origin_host {
        None => ch.allowed_domains.is_empty(),
        Some(host) => {
            !ch.allowed_domains.is_empty() && widget::domain_allowed(&ch.allowed_domains, host)
        }
    }
}
