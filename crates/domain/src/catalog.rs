//! A per-process cache of what every turn reads and rarely changes: the
//! chatbot and version a request names, the team's providers (credentials
//! opened), the API channel, pricing rules and users' emails.
//!
//! Whether it still holds is one read of a counter (`config_epoch`) that
//! database triggers bump in the same transaction as any change to those
//! tables, whoever makes it: this process, another server process on the same
//! database, the CLI, the console. A turn reads the counter once when it
//! starts ([`Catalog::refresh`]) and its lookups then answer from the cache
//! only while the cache is of that same count, so a change committed before a
//! turn starts is seen by that turn.
//!
//! An entry is stored only under the count read before it was loaded, and
//! only while the cache is still of that count: a load that raced a change
//! can only ever be stored under the count from before the change, which the
//! next refresh drops.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use sea_orm::{ConnectionTrait, Statement};
use store::entity::pricing_rule;
use uuid::Uuid;

use crate::chatbots::{self, Resolved};
use crate::conn::Reads;
use crate::ids::{ChannelId, ChatbotId, TeamId, UserId};
use crate::providers::{self, ProviderAccess};
use crate::secrets::SecretBox;
use crate::versions::SessionVersion;
use crate::{Domain, Result};

/// The change count a turn read when it started: the cache answers for it
/// only while it is the newest the process has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(i64);

type BotKey = (TeamId, Uuid, Option<i32>);
type PriceKey = (TeamId, String, String);

#[derive(Default)]
struct Entries {
    /// The count the entries are of (`None` before the first refresh).
    epoch: Option<i64>,
    /// `chatbots::resolve` by (team, public id, version asked).
    resolved: HashMap<BotKey, Arc<Resolved>>,
    /// `chatbots::find_row` by (team, public id).
    rows: HashMap<(TeamId, Uuid), Arc<Resolved>>,
    providers: HashMap<(TeamId, String), Arc<ProviderAccess>>,
    api_channels: HashMap<TeamId, ChannelId>,
    emails: HashMap<UserId, Arc<str>>,
    /// `versions::session_version` by chatbot row.
    session_versions: HashMap<ChatbotId, Option<Arc<SessionVersion>>>,
    prices: HashMap<PriceKey, Arc<Vec<pricing_rule::Model>>>,
}

/// The cache (shared by every clone of a [`Domain`]).
#[derive(Default)]
pub struct Catalog {
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave a half-written map
        // that matters: every entry is a whole value.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the change count (one statement) and drops the entries if it
    /// moved: the turn that calls this sees every change committed before.
    pub async fn refresh(&self, db: &impl Reads) -> Result<Epoch> {
        let db = db.reader();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT n FROM config_epoch WHERE id = 1",
            ))
            .await?;
        let n: i64 = match row {
            Some(r) => r.try_get("", "n")?,
            None => return Err(crate::Error::internal("the config_epoch row is missing")),
        };
        let mut e = self.lock();
        // The count only grows: an older read (a turn that raced a newer one)
        // leaves the newer entries alone and will simply not be served.
        if e.epoch.is_none_or(|have| have < n) {
            *e = Entries {
                epoch: Some(n),
                ..Default::default()
            };
        }
        Ok(Epoch(n))
    }

    fn get<K: Eq + Hash, V: Clone>(
        &self,
        at: Epoch,
        map: fn(&mut Entries) -> &mut HashMap<K, V>,
        key: &K,
    ) -> Option<V> {
        let mut e = self.lock();
        if e.epoch != Some(at.0) {
            return None;
        }
        map(&mut e).get(key).cloned()
    }

    fn put<K: Eq + Hash, V>(
        &self,
        at: Epoch,
        map: fn(&mut Entries) -> &mut HashMap<K, V>,
        key: K,
        value: V,
    ) {
        let mut e = self.lock();
        if e.epoch == Some(at.0) {
            map(&mut e).insert(key, value);
        }
    }

    /// [`chatbots::resolve`], cached.
    pub async fn resolve(
        &self,
        db: &Domain,
        at: Epoch,
        team_id: TeamId,
        id: Uuid,
        version: Option<i32>,
    ) -> Result<Arc<Resolved>> {
        let key = (team_id, id, version);
        if let Some(r) = self.get(at, |e| &mut e.resolved, &key) {
            return Ok(r);
        }
        let r = Arc::new(chatbots::resolve(db, team_id, id, version).await?);
        self.put(at, |e| &mut e.resolved, key, r.clone());
        Ok(r)
    }

    /// [`chatbots::find_row`], cached.
    pub async fn find_row(
        &self,
        db: &Domain,
        at: Epoch,
        team_id: TeamId,
        id: Uuid,
    ) -> Result<Arc<Resolved>> {
        let key = (team_id, id);
        if let Some(r) = self.get(at, |e| &mut e.rows, &key) {
            return Ok(r);
        }
        let r = Arc::new(chatbots::find_row(db, team_id, id).await?);
        self.put(at, |e| &mut e.rows, key, r.clone());
        Ok(r)
    }

    /// [`providers::access`], cached (the credential stays opened in memory,
    /// where every call with it has it anyway).
    pub async fn provider(
        &self,
        db: &Domain,
        secrets: &SecretBox,
        at: Epoch,
        team_id: TeamId,
        name: &str,
    ) -> Result<Arc<ProviderAccess>> {
        let key = (team_id, name.to_string());
        if let Some(p) = self.get(at, |e| &mut e.providers, &key) {
            return Ok(p);
        }
        let p = Arc::new(providers::access(db, secrets, team_id, name).await?);
        self.put(at, |e| &mut e.providers, key, p.clone());
        Ok(p)
    }

    /// [`crate::channels::api_channel`] (made on first use), cached.
    pub async fn api_channel(&self, db: &Domain, at: Epoch, team_id: TeamId) -> Result<ChannelId> {
        if let Some(c) = self.get(at, |e| &mut e.api_channels, &team_id) {
            return Ok(c);
        }
        let c = crate::channels::api_channel(db, team_id).await?;
        self.put(at, |e| &mut e.api_channels, team_id, c);
        Ok(c)
    }

    /// [`crate::users::email`], cached.
    pub async fn email(&self, db: &Domain, at: Epoch, user_id: UserId) -> Result<Arc<str>> {
        if let Some(m) = self.get(at, |e| &mut e.emails, &user_id) {
            return Ok(m);
        }
        let m: Arc<str> = crate::users::email(db, user_id).await?.into();
        self.put(at, |e| &mut e.emails, user_id, m.clone());
        Ok(m)
    }

    /// [`crate::pricing::rules`], cached.
    pub async fn price_rules(
        &self,
        db: &Domain,
        at: Epoch,
        team_id: TeamId,
        provider: &str,
        model: &str,
    ) -> Result<Arc<Vec<pricing_rule::Model>>> {
        let key = (team_id, provider.to_string(), model.to_string());
        if let Some(r) = self.get(at, |e| &mut e.prices, &key) {
            return Ok(r);
        }
        let r = Arc::new(crate::pricing::rules(db, team_id, provider, model).await?);
        self.put(at, |e| &mut e.prices, key, r.clone());
        Ok(r)
    }

    /// [`crate::versions::session_version`], cached (`None`: no such row).
    /// Loaded through `db`: a caller inside a transaction passes it, since on
    /// PostgreSQL a second connection from the shared pool could wait on
    /// transactions that wait on it.
    pub async fn session_version(
        &self,
        db: &impl Reads,
        at: Epoch,
        row: ChatbotId,
    ) -> Result<Option<Arc<SessionVersion>>> {
        if let Some(v) = self.get(at, |e| &mut e.session_versions, &row) {
            return Ok(v);
        }
        let v = crate::versions::session_version(db, row)
            .await?
            .map(Arc::new);
        self.put(at, |e| &mut e.session_versions, row, v.clone());
        Ok(v)
    }
}
