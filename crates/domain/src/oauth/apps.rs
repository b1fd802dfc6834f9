//! A team's OAuth2 applications. A user-facing application redirects people
//! back to exact-match URIs after they consent; a machine application gets
//! client-credentials tokens with the `chat:start` scope only, and starts
//! chats only with the chatbots listed for it (ADR-0056: none listed, none
//! allowed). Client secrets are shown once and stored as SHA-256.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde_json::Value;
use store::entity::{chatbot, oauth_app, oauth_app_chatbot};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{AppKind, ErrorCode, Scope, Scopes, failure, hash, new_secret};
use crate::conn::Reads;
use crate::ids::{ChatbotId, TeamId, UserId};
use crate::text_enum::stored;
use crate::{Domain, Error, Result};

#[derive(Debug, Clone, serde::Serialize)]
pub struct App {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub team_id: TeamId,
    pub client_id: String,
    pub name: String,
    pub kind: AppKind,
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    pub pkce_required: bool,
    /// Public ids of the chatbots a machine application may start chats with.
    pub allowed_chatbots: Vec<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl App {
    /// The scopes the application may be granted.
    pub fn grantable(&self) -> Scopes {
        match self.kind {
            AppKind::User => Scopes::all(),
            AppKind::Machine => Scopes::only(Scope::ChatStart),
        }
    }
}

/// What `create` is asked for.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub name: String,
    pub kind: AppKind,
    /// A public client (a browser or mobile app) cannot keep a secret.
    pub public: bool,
    pub redirect_uris: Vec<String>,
    /// Chatbots (any version's public id) a machine application may use.
    pub chatbots: Vec<Uuid>,
    /// Whether PKCE with S256 is required; public clients always require it.
    pub pkce_required: bool,
}

fn bad(message: impl Into<String>) -> Error {
    Error::BadRequest(message.into())
}

/// An exact-match redirect URI: absolute, https (or http on a loopback
/// host, for native apps and local development, RFC 8252 §7.3), no fragment.
pub fn validate_redirect_uri(uri: &str) -> Result<String> {
    let parsed =
        url::Url::parse(uri).map_err(|_| bad(format!("{uri:?} is not an absolute URL")))?;
    if parsed.fragment().is_some() {
        return Err(bad(format!("{uri:?}: a redirect URI has no fragment")));
    }
    let loopback = matches!(parsed.host(), Some(url::Host::Domain("localhost")))
        || matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(uri.to_string()),
        "http" if loopback => Ok(uri.to_string()),
        _ => Err(bad(format!(
            "{uri:?}: a redirect URI is https (http only for localhost)"
        ))),
    }
}

fn from_row(m: oauth_app::Model, chatbots: Vec<Uuid>) -> Result<App> {
    let redirect_uris = match &m.redirect_uris {
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(App {
        id: m.id,
        team_id: TeamId(m.team_id),
        client_id: m.client_id,
        name: m.name,
        kind: stored(&m.kind)?,
        confidential: m.confidential,
        redirect_uris,
        pkce_required: m.pkce_required,
        allowed_chatbots: chatbots,
        created_at: m.created_at,
    })
}

/// Registers an application; returns it with its client secret (none for a
/// public client), the only time the secret exists outside the client.
pub async fn create(
    domain: &Domain,
    team_id: TeamId,
    created_by: Option<UserId>,
    new: NewApp,
) -> Result<(App, Option<String>)> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(bad("an application needs a name of at most 255 characters"));
    }
    let redirect_uris = new
        .redirect_uris
        .iter()
        .map(|u| validate_redirect_uri(u.trim()))
        .collect::<Result<Vec<_>>>()?;
    match new.kind {
        AppKind::User if redirect_uris.is_empty() => {
            return Err(bad(
                "a user-facing application needs at least one redirect URI",
            ));
        }
        AppKind::User if !new.chatbots.is_empty() => {
            return Err(bad(
                "only machine applications have a chatbot allowlist; a user's token reaches the chatbots its user may",
            ));
        }
        AppKind::Machine if !redirect_uris.is_empty() => {
            return Err(bad("a machine application has no redirect URIs"));
        }
        AppKind::Machine if new.public => {
            return Err(bad(
                "a machine application authenticates with its secret, so it cannot be public",
            ));
        }
        _ => {}
    }
    let txn = domain.db.write.begin().await?;
    let mut rows = Vec::new();
    for id in &new.chatbots {
        let r = crate::chatbots::find_row(&txn, team_id, *id).await?;
        if !rows.contains(&r.family_id) {
            rows.push(r.family_id);
        }
    }
    let secret = (!new.public).then(new_secret);
    let m = oauth_app::ActiveModel {
        team_id: Set(team_id.0),
        client_id: Set(new_secret()),
        name: Set(name.to_string()),
        kind: Set(new.kind.as_str().into()),
        confidential: Set(!new.public),
        secret_hash: Set(secret.as_deref().map(hash)),
        redirect_uris: Set(Value::from(redirect_uris)),
        pkce_required: Set(new.public || new.pkce_required),
        created_by: Set(created_by.map(|u| u.0)),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    for ChatbotId(row) in &rows {
        oauth_app_chatbot::ActiveModel {
            app_id: Set(m.id),
            chatbot_id: Set(*row),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    let chatbots = allowed(&domain.db.write, m.id).await?;
    Ok((from_row(m, chatbots)?, secret))
}

async fn allowed(db: &impl Reads, app_id: i64) -> Result<Vec<Uuid>> {
    Ok(allowed_of(db, &[app_id])
        .await?
        .into_iter()
        .map(|(_, id)| id)
        .collect())
}

/// The allowlists of several applications in one query: (app, chatbot) pairs.
async fn allowed_of(db: &impl Reads, app_ids: &[i64]) -> Result<Vec<(i64, Uuid)>> {
    if app_ids.is_empty() {
        return Ok(Vec::new());
    }
    let links = oauth_app_chatbot::Entity::find()
        .filter(oauth_app_chatbot::Column::AppId.is_in(app_ids.iter().copied()))
        .order_by_asc(oauth_app_chatbot::Column::Id)
        .all(db.reader())
        .await?;
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let public: std::collections::HashMap<i64, Uuid> = chatbot::Entity::find()
        .filter(chatbot::Column::Id.is_in(links.iter().map(|l| l.chatbot_id)))
        .all(db.reader())
        .await?
        .into_iter()
        .map(|c| (c.id, c.public_id))
        .collect();
    Ok(links
        .into_iter()
        .filter_map(|l| public.get(&l.chatbot_id).map(|id| (l.app_id, *id)))
        .collect())
}

/// The team's applications, oldest first (two queries, however many).
pub async fn list(db: &impl Reads, team_id: TeamId) -> Result<Vec<App>> {
    let rows = oauth_app::Entity::find()
        .filter(oauth_app::Column::TeamId.eq(team_id))
        .order_by_asc(oauth_app::Column::Id)
        .all(db.reader())
        .await?;
    let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
    let links = allowed_of(db, &ids).await?;
    rows.into_iter()
        .map(|m| {
            let chatbots = links
                .iter()
                .filter(|(app, _)| *app == m.id)
                .map(|(_, id)| *id)
                .collect();
            from_row(m, chatbots)
        })
        .collect()
}

/// An application by client id, in any team.
pub async fn by_client_id(db: &impl Reads, client_id: &str) -> Result<Option<App>> {
    let Some(m) = oauth_app::Entity::find()
        .filter(oauth_app::Column::ClientId.eq(client_id))
        .one(db.reader())
        .await?
    else {
        return Ok(None);
    };
    let chatbots = allowed(db, m.id).await?;
    Ok(Some(from_row(m, chatbots)?))
}

/// One of the team's applications (another team's is not found).
pub async fn in_team(db: &impl Reads, team_id: TeamId, client_id: &str) -> Result<App> {
    by_client_id(db, client_id)
        .await?
        .filter(|a| a.team_id == team_id)
        .ok_or_else(|| Error::not_found(format!("no OAuth application {client_id:?}")))
}

/// Removes an application; its tokens and codes go with it, so every token
/// it was given stops working at once.
pub async fn remove(db: &Domain, team_id: TeamId, client_id: &str) -> Result<App> {
    let app = in_team(&db.db.write, team_id, client_id).await?;
    oauth_app::Entity::delete_by_id(app.id)
        .exec(&db.db.write)
        .await?;
    Ok(app)
}

/// The client a token request authenticates as (RFC 6749 §2.3): a
/// confidential client by its secret, a public one by its id alone.
pub async fn authenticate(db: &impl Reads, client_id: &str, secret: Option<&str>) -> Result<App> {
    let unknown = || failure(ErrorCode::InvalidClient, "client authentication failed");
    let app = by_client_id(db, client_id).await?.ok_or_else(unknown)?;
    let row = oauth_app::Entity::find_by_id(app.id)
        .one(db.reader())
        .await?
        .ok_or_else(unknown)?;
    match (row.secret_hash, secret) {
        (None, _) => Ok(app),
        (Some(stored), Some(given)) => {
            let ok: bool = stored.as_bytes().ct_eq(hash(given).as_bytes()).into();
            if ok { Ok(app) } else { Err(unknown()) }
        }
        (Some(_), None) => Err(unknown()),
    }
}

/// Whether a machine application may start chats with the chatbot whose
/// working version row is `family`.
pub async fn allows_chatbot(db: &impl Reads, app_id: i64, family: ChatbotId) -> Result<bool> {
    Ok(oauth_app_chatbot::Entity::find()
        .filter(oauth_app_chatbot::Column::AppId.eq(app_id))
        .filter(oauth_app_chatbot::Column::ChatbotId.eq(family.0))
        .one(db.reader())
        .await?
        .is_some())
}
