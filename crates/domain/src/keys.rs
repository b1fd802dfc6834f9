//! API keys: `prefix.secret`, stored as the prefix plus the SHA-256 of the whole
//! key. The secret is shown once at creation and never stored.

use rand::Rng;
use rand::distr::Alphanumeric;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};
use store::entity::api_key;

use crate::conn::{Reads, Writes};
use crate::ids::TeamId;
use crate::{Error, Result};
use store::constraints::API_KEY_PREFIX;

pub const PREFIX_LEN: usize = 8;
pub const SECRET_LEN: usize = 40;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKey {
    pub prefix: String,
    pub name: String,
    pub read_only: bool,
    pub revoked: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        ApiKey {
            prefix: m.prefix,
            name: m.name,
            read_only: m.read_only,
            revoked: m.revoked,
            created_at: m.created_at,
        }
    }
}

/// `n` random letters and digits.
pub fn random_alnum(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

pub fn hash_key(full: &str) -> String {
    hex::encode(Sha256::digest(full.as_bytes()))
}

/// Creates a key for a team's user and returns it with the full key text, the
/// only time that text exists outside the client.
pub async fn create(
    db: &impl Writes,
    team_id: TeamId,
    user_id: i64,
    name: &str,
    read_only: bool,
) -> Result<(ApiKey, String)> {
    let db = db.writer();
    let name = name.trim();
    if name.chars().count() > 50 {
        return Err(Error::BadRequest(
            "key name must be at most 50 characters".into(),
        ));
    }
    // A prefix collision is astronomically rare; retry a few times rather than fail.
    for _ in 0..5 {
        let prefix = random_alnum(PREFIX_LEN);
        let full = format!("{prefix}.{}", random_alnum(SECRET_LEN));
        let res = api_key::ActiveModel {
            prefix: Set(prefix),
            hashed_key: Set(hash_key(&full)),
            name: Set(name.to_string()),
            team_id: Set(team_id.0),
            user_id: Set(user_id),
            read_only: Set(read_only),
            revoked: Set(false),
            created_at: Set(store::now()),
            expires_at: Set(None),
            ..Default::default()
        }
        .insert(db)
        .await;
        match res {
            Ok(m) => return Ok((m.into(), full)),
            Err(e) if API_KEY_PREFIX.violated_by(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::internal("could not allocate a unique key prefix"))
}

pub async fn list(db: &impl Reads, team_id: TeamId) -> Result<Vec<ApiKey>> {
    let db = db.reader();
    Ok(api_key::Entity::find()
        .filter(api_key::Column::TeamId.eq(team_id))
        .order_by_asc(api_key::Column::CreatedAt)
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(ApiKey::from)
        .collect())
}

/// Revokes a key by prefix; revocation is one-way.
pub async fn revoke(db: &impl Writes, prefix: &str) -> Result<ApiKey> {
    revoke_where(db, None, prefix).await
}

/// Revokes one of a team's keys (another team's prefix is not found).
pub async fn revoke_in_team(db: &impl Writes, team_id: TeamId, prefix: &str) -> Result<ApiKey> {
    revoke_where(db, Some(team_id), prefix).await
}

async fn revoke_where(db: &impl Writes, team_id: Option<TeamId>, prefix: &str) -> Result<ApiKey> {
    let db = db.writer();
    let mut q = api_key::Entity::find().filter(api_key::Column::Prefix.eq(prefix));
    if let Some(t) = team_id {
        q = q.filter(api_key::Column::TeamId.eq(t));
    }
    let key = q
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("no API key with prefix {prefix:?}")))?;
    let mut am: api_key::ActiveModel = key.into();
    am.revoked = Set(true);
    Ok(am.update(db).await?.into())
}
