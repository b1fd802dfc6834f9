//! Widget channels (`embedded_widget`): embed keys, allowed domains, auth
//! level, token lifetime and the kill switch; and the session tokens the chat
//! API hands out.
//!
//! Embed keys ship in page HTML, but they are still stored as SHA-256 only and
//! shown once (at creation and rotation), like API keys.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::entity::{channel, chatbot};
use uuid::Uuid;

use crate::conn::{Reads, Writes};
use crate::ids::TeamId;
use crate::{Error, Result};

pub const PLATFORM: super::Platform = super::Platform::EmbeddedWidget;
pub const DEFAULT_TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthLevel {
    /// Embed key required; no session token (what the published widget sends).
    EmbedKey,
    /// Embed key to start, then a session token on every session request.
    SessionToken,
}

impl AuthLevel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "embed-key" | "embed_key" => Some(AuthLevel::EmbedKey),
            "session-token" | "session_token" => Some(AuthLevel::SessionToken),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AuthLevel::EmbedKey => "embed-key",
            AuthLevel::SessionToken => "session-token",
        }
    }
}

crate::text_enum::text_enum! {
    /// What admits a widget to `start/` (the original's `credential_mode`):
    /// its embed key, or, in `oauth` mode, a machine application's access
    /// token sent by the page's server (an embed key alone is then refused).
    pub enum CredentialMode {
        EmbedKey = "embed_key",
        OAuth = "oauth",
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WidgetChannel {
    #[serde(skip)]
    pub row_id: i64,
    pub id: Uuid,
    #[serde(skip)]
    pub team_id: TeamId,
    #[serde(skip)]
    pub chatbot_row_id: i64,
    pub name: String,
    pub allowed_domains: Vec<String>,
    pub auth_level: AuthLevel,
    pub credential_mode: CredentialMode,
    pub token_lifetime_secs: i64,
    pub enabled: bool,
    pub disabled_message: Option<String>,
}

/// A widget channel's credential mode from its config; one stored before
/// oauth mode existed has none and is admitted by its embed key.
pub(crate) fn credential_mode(cfg: &Value) -> CredentialMode {
    cfg.get("credential_mode")
        .and_then(Value::as_str)
        .and_then(CredentialMode::parse)
        .unwrap_or(CredentialMode::EmbedKey)
}

fn from_row(m: channel::Model) -> WidgetChannel {
    let cfg = &m.config;
    WidgetChannel {
        allowed_domains: cfg
            .get("allowed_domains")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        auth_level: cfg
            .get("auth_level")
            .and_then(Value::as_str)
            .and_then(AuthLevel::parse)
            .unwrap_or(AuthLevel::SessionToken),
        credential_mode: credential_mode(cfg),
        token_lifetime_secs: cfg
            .get("token_lifetime_secs")
            .and_then(Value::as_i64)
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS),
        row_id: m.id,
        id: m.public_id,
        team_id: TeamId(m.team_id),
        chatbot_row_id: m.chatbot_id.unwrap_or_default(),
        name: m.name,
        enabled: m.enabled,
        disabled_message: m.disabled_message,
    }
}

fn new_key() -> String {
    let s: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("ek_{s}")
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.trim().as_bytes()))
}

/// Host patterns: `example.com`, `*.example.com` (any depth of subdomain, not
/// the apex) or `*`.
pub fn validate_domain(d: &str) -> Result<String> {
    let d = d.trim().to_ascii_lowercase();
    let body = d.strip_prefix("*.").unwrap_or(&d);
    let ok = d == "*"
        || (!body.is_empty()
            && body.split('.').all(|l| {
                !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }));
    if ok {
        Ok(d)
    } else {
        Err(Error::BadRequest(format!("invalid domain pattern {d:?}")))
    }
}

pub fn domain_allowed(domains: &[String], host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    domains.iter().any(|d| {
        d == "*"
            || d == host
            || d.strip_prefix("*.")
                .is_some_and(|base| host.ends_with(&format!(".{base}")))
    })
}

/// The request's origin host: `Origin` if present and non-empty, else
/// `Referer`; lowercased, without port. `Origin: null`, a scheme other than
/// http(s), or a host that is not a valid name or address gives no host, so
/// `https://evil.com\.example.org`, `https://evil.com%2f.example.org` or
/// `https://.example.org` cannot pass for a subdomain.
pub fn origin_host(origin: Option<&str>, referer: Option<&str>) -> Option<String> {
    let raw = match origin.map(str::trim).filter(|o| !o.is_empty()) {
        Some(o) => o,
        None => referer.map(str::trim).filter(|r| !r.is_empty())?,
    };
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.host()? {
        url::Host::Domain(d) => {
            let valid = d.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            valid.then(|| d.to_ascii_lowercase())
        }
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

async fn chatbot_head<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    id: Uuid,
) -> Result<chatbot::Model> {
    chatbot::Entity::find()
        .filter(chatbot::Column::PublicId.eq(id))
        .filter(chatbot::Column::WorkingVersionId.is_null())
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("no chatbot with id {id}")))
}

/// Adds a widget channel to a chatbot and returns it with its embed key.
pub async fn add(
    db: &impl Writes,
    chatbot_id: Uuid,
    domains: &[String],
    level: AuthLevel,
    token_lifetime_secs: Option<i64>,
) -> Result<(WidgetChannel, String)> {
    add_with_mode(
        db,
        chatbot_id,
        domains,
        level,
        token_lifetime_secs,
        CredentialMode::EmbedKey,
    )
    .await
}

/// Adds a widget channel admitted as `mode` says. An `oauth` channel with
/// no allowed domains is server-only: `start/` is called by the page's
/// server (no origin), and any browser origin is refused. Its sessions
/// always need their session token.
pub async fn add_with_mode(
    db: &impl Writes,
    chatbot_id: Uuid,
    domains: &[String],
    level: AuthLevel,
    token_lifetime_secs: Option<i64>,
    mode: CredentialMode,
) -> Result<(WidgetChannel, String)> {
    let db = db.writer();
    let bot = chatbot_head(db, chatbot_id).await?;
    let domains = domains
        .iter()
        .map(|d| validate_domain(d))
        .collect::<Result<Vec<_>>>()?;
    if domains.is_empty() && mode == CredentialMode::EmbedKey {
        return Err(Error::BadRequest(
            "a widget channel needs at least one allowed domain (--domain)".into(),
        ));
    }
    if matches!(token_lifetime_secs, Some(s) if s <= 0) {
        return Err(Error::BadRequest(
            "the session token lifetime must be positive".into(),
        ));
    }
    let key = new_key();
    let level = match mode {
        CredentialMode::EmbedKey => level,
        CredentialMode::OAuth => AuthLevel::SessionToken,
    };
    let mut cfg = json!({
        "allowed_domains": domains,
        "auth_level": level.as_str(),
        "credential_mode": mode.as_str(),
    });
    if let Some(s) = token_lifetime_secs {
        cfg["token_lifetime_secs"] = json!(s);
    }
    let m = channel::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(bot.team_id),
        chatbot_id: Set(Some(bot.id)),
        platform: Set(PLATFORM.as_str().into()),
        name: Set(format!("{} widget", bot.name)),
        config: Set(cfg),
        secret: Set(None),
        enabled: Set(true),
        disabled_message: Set(None),
        deleted: Set(false),
        created_at: Set(store::now()),
        key_hash: Set(Some(hash(&key))),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((from_row(m), key))
}

pub async fn list(db: &impl Reads, chatbot_id: Uuid) -> Result<Vec<WidgetChannel>> {
    let db = db.reader();
    let bot = chatbot_head(db, chatbot_id).await?;
    Ok(channel::Entity::find()
        .filter(channel::Column::ChatbotId.eq(bot.id))
        .filter(channel::Column::Platform.eq(PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .order_by_asc(channel::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

async fn live<C: ConnectionTrait + Reads + Writes>(db: &C, id: Uuid) -> Result<channel::Model> {
    channel::Entity::find()
        .filter(channel::Column::PublicId.eq(id))
        .filter(channel::Column::Platform.eq(PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("no widget channel with id {id}")))
}

/// A new embed key; the old one stops working at once.
pub async fn rotate_key(db: &impl Writes, id: Uuid) -> Result<String> {
    let db = db.writer();
    let m = live(db, id).await?;
    let key = new_key();
    let mut am: channel::ActiveModel = m.into();
    am.key_hash = Set(Some(hash(&key)));
    am.update(db).await?;
    Ok(key)
}

pub use super::{remove, set_enabled};

/// The live widget channel an embed key belongs to.
pub async fn by_key(db: &impl Reads, key: &str) -> Result<Option<WidgetChannel>> {
    let db = db.reader();
    Ok(channel::Entity::find()
        .filter(channel::Column::KeyHash.eq(hash(key)))
        .filter(channel::Column::Platform.eq(PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?
        .map(from_row))
}

pub async fn by_row_id(db: &impl Reads, id: i64) -> Result<Option<WidgetChannel>> {
    let db = db.reader();
    Ok(channel::Entity::find_by_id(id)
        .filter(channel::Column::Platform.eq(PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?
        .map(from_row))
}

/// Signs and checks session tokens: `base64url({"sid","iat"}).base64url(hmac)`.
/// The key is an instance secret kept in the database, shared by every process.
#[derive(Clone)]
pub struct SessionTokens {
    key: Arc<Vec<u8>>,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionTokens(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
}

type HmacSha256 = Hmac<Sha256>;

impl SessionTokens {
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: Arc::new(key.to_vec()),
        }
    }

    fn mac(&self) -> Result<HmacSha256> {
        let mut m = HmacSha256::new_from_slice(&self.key)
            .map_err(|e| Error::internal(format!("token key: {e}")))?;
        m.update(b"chatstudio.session-token:");
        Ok(m)
    }

    pub fn issue(&self, session_external_id: &str) -> Result<String> {
        let payload =
            json!({"sid": session_external_id, "iat": chrono::Utc::now().timestamp()}).to_string();
        let p = URL_SAFE_NO_PAD.encode(payload.as_bytes());
        let mut m = self.mac()?;
        m.update(p.as_bytes());
        Ok(format!(
            "{p}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        ))
    }

    /// Checks the signature and that the token names this session.
    pub fn verify(
        &self,
        token: &str,
        session_external_id: &str,
    ) -> std::result::Result<(), TokenError> {
        let (p, sig) = token.trim().split_once('.').ok_or(TokenError::Invalid)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Invalid)?;
        let mut m = self.mac().map_err(|_| TokenError::Invalid)?;
        m.update(p.as_bytes());
        m.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Invalid)?;
        let v: Value = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
        if v.get("sid").and_then(Value::as_str) == Some(session_external_id) {
            Ok(())
        } else {
            Err(TokenError::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        let d = vec!["example.com".to_string(), "*.acme.org".to_string()];
        assert!(domain_allowed(&d, "example.com"));
        assert!(!domain_allowed(&d, "www.example.com"));
        assert!(domain_allowed(&d, "a.b.acme.org"));
        assert!(!domain_allowed(&d, "acme.org"));
        assert!(!domain_allowed(&d, "evilacme.org"));
        assert!(domain_allowed(&["*".to_string()], "anything.net"));
        assert!(!domain_allowed(&["*".to_string()], ""));
        assert!(validate_domain("bad domain").is_err());
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_host(Some("https://Example.com:8443"), None).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            origin_host(None, Some("https://a.b.org/page?x=1")).as_deref(),
            Some("a.b.org")
        );
        assert_eq!(
            origin_host(Some("null"), Some("https://x.org/")),
            None,
            "Origin wins even when useless"
        );
        assert_eq!(origin_host(None, None), None);
        // Found by an attack: none of these may pass for a subdomain of example.org.
        let allowed = vec!["*.example.org".to_string()];
        for o in [
            "https://evil.com\\.example.org",
            "https://evil.com%2f.example.org",
            "https://.example.org",
            "javascript://app.example.org",
            "https://app..example.org",
            "https://user@evil.com#.example.org",
            "ftp://app.example.org",
        ] {
            let host = origin_host(Some(o), None);
            assert!(
                !host.is_some_and(|h| domain_allowed(&allowed, &h)),
                "{o} passed"
            );
        }
        assert_eq!(
            origin_host(Some("https://app.example.org"), None).as_deref(),
            Some("app.example.org")
        );
        assert_eq!(
            origin_host(Some("http://[::1]:8000"), None).as_deref(),
            Some("::1")
        );
    }

    #[test]
    fn tokens() {
        let t = SessionTokens::new(b"k");
        let tok = t.issue("s-1").unwrap();
        assert!(t.verify(&tok, "s-1").is_ok());
        assert!(t.verify(&tok, "s-2").is_err());
        assert!(SessionTokens::new(b"other").verify(&tok, "s-1").is_err());
        let mut tampered = tok.clone();
        tampered.replace_range(0..1, if tok.starts_with('e') { "f" } else { "e" });
        assert!(t.verify(&tampered, "s-1").is_err());
        assert!(t.verify("garbage", "s-1").is_err());
    }
}
