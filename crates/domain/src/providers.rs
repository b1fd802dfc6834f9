//! A team's LLM providers. Credentials are sealed with the instance key before
//! they reach the database and are only opened to make a provider call; no
//! listing or API ever returns them.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::Value;
use store::entity::provider;

use crate::conn::{Reads, Writes};
use crate::ids::TeamId;
use crate::secrets::SecretBox;
use crate::{Error, Result};
use store::constraints::PROVIDER_NAME;

pub const KINDS: &[&str] = &["openai", "anthropic", "gemini", "builtin"];

/// A provider as listed: everything but the secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Provider {
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub has_api_key: bool,
    pub header_names: Vec<String>,
    pub timeout_secs: Option<i32>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A provider's settings with its credential in the clear: what the CLI
/// adds and what a provider call needs. Never log it (`Debug` leaves the
/// key and headers out).
#[derive(Clone, Default)]
pub struct NewProvider {
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub timeout_secs: Option<i32>,
}

/// What a provider call needs, with the credential decrypted.
pub type ProviderAccess = NewProvider;

impl std::fmt::Debug for NewProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderAccess")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

fn listed(m: provider::Model) -> Provider {
    let header_names = m
        .headers
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    Provider {
        name: m.name,
        kind: m.kind,
        base_url: m.base_url,
        has_api_key: m.secret.is_some(),
        header_names,
        timeout_secs: m.timeout_secs,
        created_at: m.created_at,
    }
}

pub async fn add(
    db: &impl Writes,
    secrets: &SecretBox,
    team_id: TeamId,
    p: NewProvider,
) -> Result<Provider> {
    let db = db.writer();
    let name = p.name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(Error::BadRequest(
            "provider name must be 1 to 100 characters".into(),
        ));
    }
    if !KINDS.contains(&p.kind.as_str()) {
        return Err(Error::BadRequest(format!(
            "unknown provider type {:?}: use one of {}",
            p.kind,
            KINDS.join(", ")
        )));
    }
    if let Some(u) = &p.base_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(Error::BadRequest(format!(
            "base URL must start with http:// or https://: {u}"
        )));
    }
    if p.kind != "builtin" && p.api_key.is_none() && p.base_url.is_none() {
        return Err(Error::BadRequest(format!(
            "a {} provider needs an API key (--api-key-env or --api-key-file)",
            p.kind
        )));
    }
    if matches!(p.timeout_secs, Some(t) if t <= 0) {
        return Err(Error::BadRequest(
            "timeout must be a positive number of seconds".into(),
        ));
    }
    let secret = match p.api_key.as_deref().map(str::trim) {
        Some(k) if !k.is_empty() => Some(secrets.seal(k)?),
        _ => None,
    };
    // Some gateways take their credential in a header: values are sealed like the key.
    let mut headers = serde_json::Map::new();
    for (k, v) in p.headers {
        headers.insert(k, Value::String(secrets.seal(&v)?));
    }
    let now = store::now();
    let m = provider::ActiveModel {
        team_id: Set(team_id.0),
        name: Set(name.clone()),
        kind: Set(p.kind),
        base_url: Set(p.base_url.map(|u| u.trim_end_matches('/').to_string())),
        headers: Set(Value::Object(headers)),
        secret: Set(secret),
        timeout_secs: Set(p.timeout_secs),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| {
        Error::unique(e, PROVIDER_NAME, || {
            format!("the team already has a provider named {name:?}")
        })
    })?;
    Ok(listed(m))
}

pub async fn list(db: &impl Reads, team_id: TeamId) -> Result<Vec<Provider>> {
    let db = db.reader();
    Ok(provider::Entity::find()
        .filter(provider::Column::TeamId.eq(team_id))
        .order_by_asc(provider::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(listed)
        .collect())
}

pub async fn remove(db: &impl Writes, team_id: TeamId, name: &str) -> Result<()> {
    let db = db.writer();
    let res = provider::Entity::delete_many()
        .filter(provider::Column::TeamId.eq(team_id))
        .filter(provider::Column::Name.eq(name))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Err(Error::not_found(format!(
            "no provider named {name:?} in this team"
        )));
    }
    Ok(())
}

/// Names of the team's providers (to validate pipelines on save).
pub async fn names(db: &impl Reads, team_id: TeamId) -> Result<Vec<String>> {
    let db = db.reader();
    Ok(list(db, team_id)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect())
}

/// Seals header values an older version stored in the clear (run at start).
pub async fn seal_plain_headers(
    db: &sea_orm::DatabaseConnection,
    secrets: &SecretBox,
) -> Result<()> {
    for m in provider::Entity::find().all(db).await? {
        let Some(o) = m.headers.as_object() else {
            continue;
        };
        if o.values()
            .all(|v| v.as_str().is_none_or(SecretBox::is_sealed))
        {
            continue;
        }
        let mut sealed = serde_json::Map::new();
        for (k, v) in o {
            let v = match v.as_str() {
                Some(t) if !SecretBox::is_sealed(t) => Value::String(secrets.seal(t)?),
                _ => v.clone(),
            };
            sealed.insert(k.clone(), v);
        }
        let mut am: provider::ActiveModel = m.into();
        am.headers = Set(Value::Object(sealed));
        am.update(db).await?;
    }
    Ok(())
}

/// The provider with its credential opened, for one call.
pub async fn access(
    db: &impl Reads,
    secrets: &SecretBox,
    team_id: TeamId,
    name: &str,
) -> Result<ProviderAccess> {
    let db = db.reader();
    let m = provider::Entity::find()
        .filter(provider::Column::TeamId.eq(team_id))
        .filter(provider::Column::Name.eq(name))
        .one(db)
        .await?
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "the chatbot uses provider {name:?}, which this team does not have"
            ))
        })?;
    let api_key = match &m.secret {
        Some(s) => Some(secrets.open(s)?),
        None => None,
    };
    let mut headers = Vec::new();
    for (k, v) in m.headers.as_object().into_iter().flatten() {
        let Some(v) = v.as_str() else { continue };
        let v = if SecretBox::is_sealed(v) {
            secrets.open(v)?
        } else {
            v.to_string()
        };
        headers.push((k.clone(), v));
    }
    Ok(ProviderAccess {
        name: m.name,
        kind: m.kind,
        base_url: m.base_url,
        api_key,
        headers,
        timeout_secs: m.timeout_secs,
    })
}
