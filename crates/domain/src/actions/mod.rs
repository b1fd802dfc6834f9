//! A team's custom actions: its own HTTP APIs, described by an OpenAPI 3
//! document, that LLM nodes call as tools. An action's auth credential is
//! sealed with the instance key and only opened for a call; no listing
//! returns it.
//!
//! LLM nodes name operations as `ACTION:OPERATION_ID` (`custom_actions:` in
//! their params). A working version reads the live document; a snapshot
//! freezes the operations it uses when it is taken ([`Snapshot`]), so editing
//! an action's document never changes what a published version calls.
//! Decision: the original names actions by database id in these references;
//! here they are named by the action's name, so chatbot files stay portable
//! between instances.

pub mod openapi;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::constraints::ACTION_NAME;
use store::entity::{chatbot, custom_action};

pub use openapi::{Location, Operation, Param, Skipped};

use crate::conn::{Reads, Writes};
use crate::ids::TeamId;
use crate::pipeline::{Pipeline, action_ref};
use crate::secrets::SecretBox;
use crate::text_enum::{stored, text_enum};
use crate::{Error, Result};

text_enum!(
    /// How an action's calls authenticate.
    pub enum AuthKind {
        None = "none",
        /// The secret in a header (`X-Api-Key` unless named).
        ApiKey = "api_key",
        /// `Authorization: Bearer <secret>`.
        Bearer = "bearer",
        /// `Authorization: Basic`, a username and the secret as password.
        Basic = "basic",
    }
);

text_enum!(
    /// The outcome of the last health check.
    pub enum Health {
        Unknown = "unknown",
        Up = "up",
        Down = "down",
    }
);

pub const DEFAULT_API_KEY_HEADER: &str = "X-Api-Key";

/// An action's credentials. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    pub kind: AuthKind,
    /// The API key's header name.
    pub header: Option<String>,
    /// The basic-auth username.
    pub username: Option<String>,
    pub secret: Option<String>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            kind: AuthKind::None,
            header: None,
            username: None,
            secret: None,
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("kind", &self.kind)
            .field("header", &self.header)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An action as given by the CLI or a chatbot file.
#[derive(Debug, Clone, Default)]
pub struct NewAction {
    pub name: String,
    pub description: String,
    /// Extra instructions the model gets with the action's tools.
    pub prompt: String,
    pub server_url: String,
    /// The OpenAPI 3 document.
    pub schema: Value,
    pub auth: Auth,
    /// A path answering GET when the API is up (`action check`).
    pub health_path: Option<String>,
}

/// An action as a chatbot file declares it (`actions:`). The file never
/// holds the secret: `auth.secret_env` names the environment variable
/// `chatbot apply` reads it from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub prompt: String,
    pub server_url: String,
    /// The OpenAPI document inline…
    #[serde(default)]
    pub schema: Option<Value>,
    /// …or in a file (JSON or YAML), relative to the chatbot file.
    #[serde(default)]
    pub schema_file: Option<String>,
    #[serde(default)]
    pub health_path: Option<String>,
    #[serde(default)]
    pub auth: Option<AuthFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    #[serde(rename = "type")]
    pub kind: AuthKind,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl ActionFile {
    /// The action to store, its schema and secret read by the caller.
    pub fn into_new(self, schema: Value, secret: Option<String>) -> NewAction {
        let auth = self.auth.map_or_else(Auth::default, |a| Auth {
            kind: a.kind,
            header: a.header,
            username: a.username,
            secret,
        });
        NewAction {
            name: self.name,
            description: self.description,
            prompt: self.prompt,
            server_url: self.server_url,
            schema,
            auth,
            health_path: self.health_path,
        }
    }
}

/// An action as listed: everything but the secret.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub name: String,
    pub description: String,
    pub server_url: String,
    pub auth: AuthKind,
    pub auth_header: Option<String>,
    pub has_secret: bool,
    pub health_path: Option<String>,
    pub health_status: Health,
    pub last_health_check: Option<chrono::DateTime<chrono::Utc>>,
    /// The operation ids a node may list.
    pub operations: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What a call needs: where, how to authenticate (secret opened) and the
/// live operations. Never log it (`Auth`'s `Debug` hides the secret).
#[derive(Debug, Clone)]
pub struct ActionAccess {
    pub name: String,
    pub server_url: String,
    pub prompt: String,
    pub auth: Auth,
    pub health_path: Option<String>,
    pub operations: Vec<Operation>,
}

/// A snapshot's operations by `ACTION:OPERATION_ID`, as they were when it
/// was taken. Decision: only the operation's shape is frozen; the server URL
/// and the credential stay the action's live ones, so moving an API to a
/// new host needs no republish and the credential only ever goes to the
/// action's current server.
pub type Snapshot = BTreeMap<String, Operation>;

/// An OpenAPI document written as JSON or YAML.
pub fn parse_schema(text: &str) -> Result<Value> {
    yaml_serde::from_str(text)
        .map_err(|e| Error::BadRequest(format!("the schema is not JSON or YAML: {e}")))
}

fn check_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::BadRequest(format!("the server URL {url:?} is invalid: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::BadRequest(format!(
            "the server URL must be http:// or https:// with a host: {url:?}"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(Error::BadRequest(format!(
            "the server URL may not carry a query, a fragment or credentials: {url:?}"
        )));
    }
    Ok(url.to_string())
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The credentials as they will be stored, refusing combinations that
/// cannot authenticate.
fn check_auth(auth: &Auth) -> Result<()> {
    let bad = |m: &str| Err(Error::BadRequest(m.to_string()));
    let has_secret = auth.secret.as_deref().is_some_and(|s| !s.trim().is_empty());
    match auth.kind {
        AuthKind::None if has_secret || auth.header.is_some() || auth.username.is_some() => {
            bad("an action without auth takes no secret, header or username")
        }
        AuthKind::ApiKey | AuthKind::Bearer | AuthKind::Basic if !has_secret => Err(
            Error::BadRequest(format!("{} auth needs a secret", auth.kind)),
        ),
        AuthKind::ApiKey if !auth.header.as_deref().is_none_or(valid_header_name) => {
            bad("the API key header name is not a valid header name")
        }
        AuthKind::Basic if auth.username.as_deref().is_none_or(|u| u.trim().is_empty()) => {
            bad("basic auth needs a username")
        }
        AuthKind::Basic if auth.username.as_deref().is_some_and(|u| u.contains(':')) => {
            bad("a basic-auth username may not contain ':'")
        }
        k if k != AuthKind::ApiKey && auth.header.is_some() => {
            bad("only api_key auth takes a header name")
        }
        k if k != AuthKind::Basic && auth.username.is_some() => {
            bad("only basic auth takes a username")
        }
        _ => Ok(()),
    }
}

/// Checks an action before it is stored; answers its operations.
fn check(a: &NewAction) -> Result<openapi::Operations> {
    let name = a.name.trim();
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(Error::BadRequest(format!(
            "action name {name:?} must be 1 to 100 letters, digits, '.', '_' or '-'"
        )));
    }
    check_url(&a.server_url)?;
    check_auth(&a.auth)?;
    if let Some(p) = &a.health_path
        && !p.starts_with('/')
    {
        return Err(Error::BadRequest(format!(
            "the health path must start with /: {p:?}"
        )));
    }
    openapi::operations(&a.schema)
        .map_err(|e| Error::BadRequest(format!("invalid OpenAPI schema: {e}")))
}

fn listed(m: &custom_action::Model) -> Result<Action> {
    let operations = openapi::operations(&m.api_schema)
        .map(|o| o.usable.into_iter().map(|o| o.operation_id).collect())
        .unwrap_or_default();
    Ok(Action {
        name: m.name.clone(),
        description: m.description.clone(),
        server_url: m.server_url.clone(),
        auth: stored(&m.auth_kind)?,
        auth_header: m.auth_header.clone(),
        has_secret: m.secret.is_some(),
        health_path: m.health_path.clone(),
        health_status: stored(&m.health_status)?,
        last_health_check: m.last_health_check,
        operations,
        created_at: m.created_at,
    })
}

fn row(
    secrets: &SecretBox,
    team_id: TeamId,
    a: NewAction,
    am: &mut custom_action::ActiveModel,
) -> Result<()> {
    let secret = match a.auth.secret.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Some(secrets.seal(s)?),
        _ => None,
    };
    let header = match a.auth.kind {
        AuthKind::ApiKey => Some(
            a.auth
                .header
                .unwrap_or_else(|| DEFAULT_API_KEY_HEADER.to_string()),
        ),
        _ => None,
    };
    let now = store::now();
    am.team_id = Set(team_id.0);
    am.name = Set(a.name.trim().to_string());
    am.description = Set(a.description);
    am.prompt = Set(a.prompt);
    am.server_url = Set(check_url(&a.server_url)?);
    am.api_schema = Set(a.schema);
    am.auth_kind = Set(a.auth.kind.as_str().to_string());
    am.auth_header = Set(header);
    am.auth_username = Set(a.auth.username.map(|u| u.trim().to_string()));
    am.secret = Set(secret);
    am.health_path = Set(a.health_path);
    am.updated_at = Set(now);
    Ok(())
}

/// Adds an action; answers it with the declared operations that cannot be
/// tools (and why).
pub async fn add(
    db: &impl Writes,
    secrets: &SecretBox,
    team_id: TeamId,
    a: NewAction,
) -> Result<(Action, Vec<Skipped>)> {
    let ops = check(&a)?;
    let name = a.name.trim().to_string();
    let mut am = custom_action::ActiveModel {
        health_status: Set(Health::Unknown.as_str().to_string()),
        created_at: Set(store::now()),
        ..Default::default()
    };
    row(secrets, team_id, a, &mut am)?;
    let m = am.insert(db.writer()).await.map_err(|e| {
        Error::unique(e, ACTION_NAME, || {
            format!("the team already has an action named {name:?}")
        })
    })?;
    Ok((listed(&m)?, ops.skipped))
}

/// Creates the action or replaces its settings (a chatbot file's
/// `actions:`). A kind that needs a secret keeps the stored one when none
/// is given, so a file need not carry it on every apply. Answers whether it
/// was created.
pub async fn put(
    db: &impl Writes,
    secrets: &SecretBox,
    team_id: TeamId,
    mut a: NewAction,
) -> Result<bool> {
    let db = db.writer();
    let Some(m) = find(db, team_id, a.name.trim()).await? else {
        add(db, secrets, team_id, a).await?;
        return Ok(true);
    };
    if a.auth.secret.is_none()
        && m.auth_kind == a.auth.kind.as_str()
        && let Some(s) = &m.secret
    {
        a.auth.secret = Some(secrets.open(s)?);
    }
    check(&a)?;
    let mut am: custom_action::ActiveModel = m.into();
    row(secrets, team_id, a, &mut am)?;
    am.update(db).await?;
    Ok(false)
}

async fn find(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    name: &str,
) -> Result<Option<custom_action::Model>> {
    Ok(custom_action::Entity::find()
        .filter(custom_action::Column::TeamId.eq(team_id))
        .filter(custom_action::Column::Name.eq(name))
        .one(db)
        .await?)
}

async fn get_row(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    name: &str,
) -> Result<custom_action::Model> {
    find(db, team_id, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("no action named {name:?} in this team")))
}

pub async fn list(db: &impl Reads, team_id: TeamId) -> Result<Vec<Action>> {
    custom_action::Entity::find()
        .filter(custom_action::Column::TeamId.eq(team_id))
        .order_by_asc(custom_action::Column::Name)
        .all(db.reader())
        .await?
        .iter()
        .map(listed)
        .collect()
}

/// Removes an action, unless a chatbot's working or published version
/// still uses it (an older version using it then fails with a clear error
/// if it is ever run).
pub async fn remove(db: &impl Writes, team_id: TeamId, name: &str) -> Result<()> {
    let db = db.writer();
    let m = get_row(db, team_id, name).await?;
    let live = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::IsArchived.eq(false))
        .filter(
            Condition::any()
                .add(chatbot::Column::WorkingVersionId.is_null())
                .add(chatbot::Column::IsDefaultVersion.eq(true)),
        )
        .all(db)
        .await?;
    for bot in live {
        let uses = Pipeline::from_config(&bot.config)
            .ok()
            .flatten()
            .is_some_and(|p| {
                p.action_refs()
                    .iter()
                    .any(|r| action_ref(r).is_some_and(|(a, _)| a == name))
            });
        if uses {
            return Err(Error::Conflict(format!(
                "the chatbot {:?} ({}) uses the action {name:?}; remove it from its pipeline first",
                bot.name, bot.public_id
            )));
        }
    }
    custom_action::Entity::delete_by_id(m.id).exec(db).await?;
    Ok(())
}

/// The action with its credential opened, for calls.
pub async fn access(
    db: &impl Reads,
    secrets: &SecretBox,
    team_id: TeamId,
    name: &str,
) -> Result<ActionAccess> {
    let m = find(db.reader(), team_id, name).await?.ok_or_else(|| {
        Error::BadRequest(format!(
            "the chatbot uses the custom action {name:?}, which this team does not have"
        ))
    })?;
    let secret = match &m.secret {
        Some(s) => Some(secrets.open(s)?),
        None => None,
    };
    let operations = openapi::operations(&m.api_schema)
        .map(|o| o.usable)
        .map_err(|e| {
            Error::BadRequest(format!("the action {name:?} has an invalid schema: {e}"))
        })?;
    Ok(ActionAccess {
        name: m.name,
        server_url: m.server_url,
        prompt: m.prompt,
        auth: Auth {
            kind: stored(&m.auth_kind)?,
            header: m.auth_header,
            username: m.auth_username,
            secret,
        },
        health_path: m.health_path,
        operations,
    })
}

/// Actions with a health path, across teams, the longest unchecked first
/// (for the periodic check).
pub async fn due_for_health(db: &impl Reads, limit: u64) -> Result<Vec<(TeamId, String)>> {
    use sea_orm::{QuerySelect, sea_query::NullOrdering};
    let rows = custom_action::Entity::find()
        .filter(custom_action::Column::HealthPath.is_not_null())
        .order_by_with_nulls(
            custom_action::Column::LastHealthCheck,
            sea_orm::Order::Asc,
            NullOrdering::First,
        )
        .limit(limit)
        .all(db.reader())
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| (TeamId(m.team_id), m.name))
        .collect())
}

/// Records a health check's outcome.
pub async fn record_health(
    db: &impl Writes,
    team_id: TeamId,
    name: &str,
    health: Health,
) -> Result<()> {
    let db = db.writer();
    let m = get_row(db, team_id, name).await?;
    let mut am: custom_action::ActiveModel = m.into();
    am.health_status = Set(health.as_str().to_string());
    am.last_health_check = Set(Some(store::now()));
    am.update(db).await?;
    Ok(())
}

/// The live operations behind `refs` (`ACTION:OPERATION_ID`), refusing a
/// reference the team's actions do not offer, and two operations the model
/// would see under one name.
pub async fn resolve_refs(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    refs: &[String],
) -> Result<Snapshot> {
    let mut out = Snapshot::new();
    let mut rows: BTreeMap<String, custom_action::Model> = BTreeMap::new();
    for r in refs {
        let Some((action, op_id)) = action_ref(r) else {
            return Err(Error::field(
                "pipeline",
                format!("custom action {r:?} must look like ACTION:OPERATION_ID"),
            ));
        };
        if !rows.contains_key(action) {
            let m = find(db, team_id, action).await?.ok_or_else(|| {
                Error::field(
                    "pipeline",
                    format!(
                        "custom action {action:?} does not exist in this team (add it with `chatstudio action add`)"
                    ),
                )
            })?;
            rows.insert(action.to_string(), m);
        }
        let m = &rows[action];
        let ops = openapi::operations(&m.api_schema)
            .map_err(|e| Error::field("pipeline", format!("custom action {action:?}: {e}")))?;
        let op = ops
            .usable
            .into_iter()
            .find(|o| o.operation_id == op_id)
            .ok_or_else(|| {
                Error::field(
                    "pipeline",
                    format!("custom action {action:?} has no operation {op_id:?}"),
                )
            })?;
        out.insert(r.clone(), op);
    }
    Ok(out)
}

/// One LLM node's custom actions, checked against the team's actions; the
/// tools the model would see under one name are refused.
pub async fn check_node(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    node_id: &str,
    refs: &[String],
    agent_tools: &[String],
) -> Result<()> {
    let ops = resolve_refs(db, team_id, refs).await?;
    let mut names: Vec<&str> = agent_tools.iter().map(String::as_str).collect();
    for (r, op) in &ops {
        if names.contains(&op.operation_id.as_str()) {
            return Err(Error::field(
                "pipeline",
                format!(
                    "node {node_id:?}: params.custom_actions: {r:?} would be a second tool named {:?}",
                    op.operation_id
                ),
            ));
        }
        names.push(&op.operation_id);
    }
    Ok(())
}

/// What a snapshot of `config` freezes: the operations its pipeline uses.
pub async fn freeze(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    config: &Value,
) -> Result<Option<Value>> {
    let refs = match Pipeline::from_config(config)? {
        Some(p) => p.action_refs(),
        None => Vec::new(),
    };
    if refs.is_empty() {
        return Ok(None);
    }
    let snap = resolve_refs(db, team_id, &refs).await?;
    Ok(Some(
        serde_json::to_value(snap).map_err(|e| Error::internal(e.to_string()))?,
    ))
}

/// A stored snapshot read back.
pub fn thawed(v: &Option<Value>) -> Result<Option<Snapshot>> {
    v.as_ref()
        .map(|v| serde_json::from_value(v.clone()).map_err(|e| Error::internal(e.to_string())))
        .transpose()
}
