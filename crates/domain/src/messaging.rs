//! A team's messaging providers: the credentials its WhatsApp channels send
//! and verify webhooks with (Meta's Cloud API, Twilio, Turn.io). Secret
//! fields are sealed together before they reach the database and opened
//! only to make a platform call or check a webhook; listings never carry
//! them. The kinds keep the original's names (`meta_cloud_api`, `twilio`,
//! `turnio`) so exported settings carry over.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use store::constraints::MESSAGING_PROVIDER_NAME;
use store::entity::messaging_provider;
use uuid::Uuid;

use crate::conn::{Reads, Writes};
use crate::ids::TeamId;
use crate::secrets::SecretBox;
use crate::text_enum::text_enum;
use crate::{Error, Result};

text_enum!(
    /// Which platform API a provider's credentials are for.
    pub enum MessagingKind {
        MetaCloudApi = "meta_cloud_api",
        Twilio = "twilio",
        Turnio = "turnio",
    }
);

impl MessagingKind {
    /// The kind for a CLI name: the original's, or the short one (`meta`, `turn`).
    pub fn from_cli(name: &str) -> Option<Self> {
        match name {
            "meta" => Some(Self::MetaCloudApi),
            "turn" => Some(Self::Turnio),
            other => Self::parse(other),
        }
    }
}

/// The template language when a Meta provider names none.
pub const DEFAULT_TEMPLATE_LANGUAGE: &str = "en";

/// What a provider holds, secrets in the clear: what the CLI adds and what
/// a platform call needs. `Debug` leaves the secrets out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    MetaCloudApi {
        /// The WhatsApp Business Account id.
        business_id: String,
        /// A system user's access token.
        access_token: String,
        /// Signs the webhook calls (`X-Hub-Signature-256`).
        app_secret: String,
        /// What Meta's verification handshake must present.
        verify_token: String,
        /// The language of the `new_bot_message` template.
        template_language_code: String,
    },
    Twilio {
        account_sid: String,
        auth_token: String,
        /// The approved Content template (`HX…`, one variable `{{1}}`) that
        /// carries a message outside WhatsApp's 24-hour window.
        #[serde(default)]
        template_content_sid: Option<String>,
    },
    Turnio {
        auth_token: String,
        /// Signs the webhook calls (`X-Turn-Hook-Signature`) when set.
        hmac_secret: Option<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("kind", &self.kind().as_str())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn kind(&self) -> MessagingKind {
        match self {
            Credentials::MetaCloudApi { .. } => MessagingKind::MetaCloudApi,
            Credentials::Twilio { .. } => MessagingKind::Twilio,
            Credentials::Turnio { .. } => MessagingKind::Turnio,
        }
    }

    /// What may be shown of them.
    fn public(&self) -> serde_json::Value {
        match self {
            Credentials::MetaCloudApi {
                business_id,
                template_language_code,
                ..
            } => {
                json!({"business_id": business_id, "template_language_code": template_language_code})
            }
            Credentials::Twilio {
                account_sid,
                template_content_sid,
                ..
            } => json!({"account_sid": account_sid, "template_content_sid": template_content_sid}),
            Credentials::Turnio { hmac_secret, .. } => {
                json!({"signed_webhooks": hmac_secret.is_some()})
            }
        }
    }

    fn check(&mut self) -> Result<()> {
        let blank = |what: &str, v: &str| {
            if v.trim().is_empty() {
                Err(Error::BadRequest(format!("{what} must not be blank")))
            } else {
                Ok(())
            }
        };
        match self {
            Credentials::MetaCloudApi {
                business_id,
                access_token,
                app_secret,
                verify_token,
                template_language_code,
            } => {
                blank("the business account id", business_id)?;
                blank("the access token", access_token)?;
                blank("the app secret", app_secret)?;
                blank("the verify token", verify_token)?;
                let lang = template_language_code.trim();
                if lang.is_empty() {
                    *template_language_code = DEFAULT_TEMPLATE_LANGUAGE.into();
                } else if lang.len() > 15
                    || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(Error::BadRequest(format!(
                        "the template language must be a code like en or pt_BR, not {lang:?}"
                    )));
                }
            }
            Credentials::Twilio {
                account_sid,
                auth_token,
                template_content_sid,
            } => {
                blank("the account SID", account_sid)?;
                blank("the auth token", auth_token)?;
                if !account_sid.trim().starts_with("AC") {
                    return Err(Error::BadRequest(
                        "a Twilio account SID starts with AC".into(),
                    ));
                }
                if template_content_sid
                    .as_deref()
                    .is_some_and(|s| !s.trim().starts_with("HX"))
                {
                    return Err(Error::BadRequest(
                        "a Twilio Content template SID starts with HX".into(),
                    ));
                }
            }
            Credentials::Turnio {
                auth_token,
                hmac_secret,
            } => {
                blank("the auth token", auth_token)?;
                if hmac_secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
                    *hmac_secret = None;
                }
            }
        }
        Ok(())
    }
}

/// A provider as listed: its name, kind and public settings.
#[derive(Debug, Clone, Serialize)]
pub struct MessagingProvider {
    pub id: Uuid,
    pub name: String,
    pub kind: MessagingKind,
    pub settings: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A provider with its credentials opened, for a platform call.
#[derive(Debug, Clone)]
pub struct MessagingAccess {
    pub row_id: i64,
    pub team_id: TeamId,
    pub name: String,
    pub credentials: Credentials,
}

fn listed(m: &messaging_provider::Model) -> Result<MessagingProvider> {
    Ok(MessagingProvider {
        id: m.public_id,
        name: m.name.clone(),
        kind: m
            .kind
            .parse()
            .map_err(|e| Error::internal_from("a stored messaging provider kind", e))?,
        settings: m.config.clone(),
        created_at: m.created_at,
    })
}

fn opened(secrets: &SecretBox, m: messaging_provider::Model) -> Result<MessagingAccess> {
    let plain = secrets.open(&m.secret)?;
    let credentials = serde_json::from_str(&plain)
        .map_err(|e| Error::internal_from("reading stored messaging credentials", e))?;
    Ok(MessagingAccess {
        row_id: m.id,
        team_id: TeamId(m.team_id),
        name: m.name,
        credentials,
    })
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

pub async fn add(
    db: &impl Writes,
    secrets: &SecretBox,
    team_id: TeamId,
    name: &str,
    mut credentials: Credentials,
) -> Result<MessagingProvider> {
    let db = db.writer();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::BadRequest(
            "a messaging provider name must be 1 to 100 characters".into(),
        ));
    }
    credentials.check()?;
    let lookup_hash = match &credentials {
        Credentials::MetaCloudApi { verify_token, .. } => Some(token_hash(verify_token)),
        _ => None,
    };
    let plain = serde_json::to_string(&credentials)
        .map_err(|e| Error::internal_from("encoding messaging credentials", e))?;
    let res = messaging_provider::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(team_id.0),
        name: Set(name.to_string()),
        kind: Set(credentials.kind().as_str().into()),
        config: Set(credentials.public()),
        secret: Set(secrets.seal(&plain)?),
        lookup_hash: Set(lookup_hash),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(db)
    .await;
    match res {
        Ok(m) => listed(&m),
        Err(e) if MESSAGING_PROVIDER_NAME.violated_by(&e) => Err(Error::Conflict(format!(
            "the team already has a messaging provider named {name:?}"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(db: &impl Reads, team_id: TeamId) -> Result<Vec<MessagingProvider>> {
    messaging_provider::Entity::find()
        .filter(messaging_provider::Column::TeamId.eq(team_id))
        .order_by_asc(messaging_provider::Column::Name)
        .all(db.reader())
        .await?
        .iter()
        .map(listed)
        .collect()
}

/// A team's provider by name, credentials opened.
pub async fn by_name(
    db: &impl Reads,
    secrets: &SecretBox,
    team_id: TeamId,
    name: &str,
) -> Result<MessagingAccess> {
    let m = messaging_provider::Entity::find()
        .filter(messaging_provider::Column::TeamId.eq(team_id))
        .filter(messaging_provider::Column::Name.eq(name.trim()))
        .one(db.reader())
        .await?
        .ok_or_else(|| Error::not_found(format!("no messaging provider named {name:?}")))?;
    opened(secrets, m)
}

/// A provider by its row, credentials opened (what a channel points at).
pub async fn access(
    db: &impl Reads,
    secrets: &SecretBox,
    row_id: i64,
) -> Result<Option<MessagingAccess>> {
    messaging_provider::Entity::find_by_id(row_id)
        .one(db.reader())
        .await?
        .map(|m| opened(secrets, m))
        .transpose()
}

/// The Meta providers whose verify token is `token` (the handshake names
/// no number, so the token is all there is to go by).
pub async fn by_verify_token(
    db: &impl Reads,
    secrets: &SecretBox,
    token: &str,
) -> Result<Vec<MessagingAccess>> {
    let rows = messaging_provider::Entity::find()
        .filter(messaging_provider::Column::LookupHash.eq(token_hash(token)))
        .filter(messaging_provider::Column::Kind.eq(MessagingKind::MetaCloudApi))
        .all(db.reader())
        .await?;
    rows.into_iter().map(|m| opened(secrets, m)).collect()
}

/// Removes a provider its channels no longer use.
pub async fn remove(db: &impl Writes, team_id: TeamId, name: &str) -> Result<()> {
    use store::entity::channel;
    let db = db.writer();
    let m = messaging_provider::Entity::find()
        .filter(messaging_provider::Column::TeamId.eq(team_id))
        .filter(messaging_provider::Column::Name.eq(name.trim()))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("no messaging provider named {name:?}")))?;
    let used = channel::Entity::find()
        .filter(channel::Column::MessagingProviderId.eq(m.id))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?;
    if let Some(ch) = used {
        return Err(Error::Conflict(format!(
            "channel {} still uses messaging provider {name:?}: remove it first",
            ch.public_id
        )));
    }
    messaging_provider::Entity::delete_by_id(m.id)
        .exec(db)
        .await?;
    Ok(())
}
