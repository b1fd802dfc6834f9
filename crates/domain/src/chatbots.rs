//! Chatbots and their versions.
//!
//! A family is one working version (editable, `working_version_id` NULL) and
//! immutable numbered snapshots. The working version's `version_number` is the
//! number the next snapshot takes. The first snapshot is published
//! automatically; publishing a later one demotes the previous (a partial unique
//! index guarantees at most one). Version number 0 means "the published
//! version, else the working version".

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionSession, TransactionTrait,
};
use serde::Deserialize;
use serde_json::Value;
use store::entity::chatbot;
use uuid::Uuid;

use crate::conn::{Reads, Writes};
use crate::ids::{ChatbotId, TeamId};
use crate::pagination::{self, Listing, Order, Page, PageRequest, Position};
use crate::pipeline::{Node, Pipeline};
use crate::{Domain, Error, Result};
use crate::{actions, providers};

pub const MAX_NAME_LEN: usize = 128;
pub const NOT_FOUND: &str = "No Experiment matches the given query.";

/// A working version with its live (non-archived) snapshots, ascending.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Chatbot {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub version_number: i32,
    pub config: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub versions: Vec<Version>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Version {
    pub id: Uuid,
    pub name: String,
    pub version_number: i32,
    pub is_default_version: bool,
    pub version_description: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A resolved version to run: a snapshot, or the working version itself.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub row_id: ChatbotId,
    pub family_id: ChatbotId,
    pub public_id: Uuid,
    pub name: String,
    pub version_number: i32,
    pub is_working: bool,
    /// The family's published version (the one participants get by default).
    pub is_published: bool,
    pub config: Value,
    /// A snapshot's frozen custom action operations (`None` on the working
    /// version, which reads them live).
    pub actions: Option<actions::Snapshot>,
}

impl Resolved {
    /// The system tag naming this version on the replies it writes (`v3`, `v4-unreleased`).
    pub fn version_tag(&self) -> String {
        if self.is_working {
            format!("v{}-unreleased", self.version_number)
        } else {
            format!("v{}", self.version_number)
        }
    }
}

/// Chatbots as code: the file `chatbot apply` and `chatbot create --file` read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotFile {
    /// Public id of an existing chatbot to update; without it, `apply` matches by name.
    #[serde(default)]
    pub id: Option<Uuid>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The configuration document (pipeline and settings).
    #[serde(default)]
    pub config: Option<Value>,
    /// Team custom actions the pipeline calls, created or updated with it.
    #[serde(default)]
    pub actions: Vec<actions::ActionFile>,
}

impl BotFile {
    pub fn parse_yaml(text: &str) -> Result<Self> {
        yaml_serde::from_str(text)
            .map_err(|e| Error::BadRequest(format!("invalid chatbot file: {e}")))
    }
}

fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::field("name", "This field may not be blank."));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::field(
            "name",
            format!("Ensure this field has no more than {MAX_NAME_LEN} characters."),
        ));
    }
    Ok(name.to_string())
}

/// The settings a chatbot configuration may hold; anything else is refused so
/// a typo cannot silently drop a setting.
pub const CONFIG_KEYS: &[&str] = &[
    "pipeline",
    "public_chat",
    "events",
    "seed_message",
    "consent",
    "allowlist",
    "voice",
];

fn validate_config(config: Option<Value>) -> Result<Value> {
    let config = match config {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(Error::field("config", "Expected a dictionary of items.")),
    };
    if let Some(keys) = config.as_object() {
        for (k, v) in keys {
            match k.as_str() {
                "pipeline" | "events" | "seed_message" | "consent" | "allowlist" | "voice" => {}
                "public_chat" if v.is_boolean() => {}
                "public_chat" => {
                    return Err(Error::field("config", "public_chat: must be true or false"));
                }
                other => {
                    return Err(Error::field(
                        "config",
                        format!(
                            "unknown setting {other:?} (known: {})",
                            CONFIG_KEYS.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    if let Some(p) = Pipeline::from_config(&config)? {
        p.validate()?;
    }
    crate::event_triggers::validate(&config)?;
    crate::onboarding::config::validate(&config)?;
    crate::voice::validate(&config)?;
    Ok(config)
}

/// Every provider a pipeline names, and every chatbot a trigger's
/// `start_pipeline` names, must exist in the team when it is saved.
async fn check_providers<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    config: &Value,
) -> Result<()> {
    for (i, t) in crate::event_triggers::of_config(config).iter().enumerate() {
        if let crate::event_triggers::Action::StartPipeline {
            chatbot: Some(id), ..
        } = &t.action
        {
            match find_row(db, team_id, *id).await {
                Ok(_) => {}
                Err(Error::NotFound(_)) => {
                    return Err(Error::field(
                        "config",
                        format!("events[{i}]: action.chatbot: no chatbot {id} in this team"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(v) = crate::voice::of_config(config) {
        let have = providers::names(db, team_id).await?;
        for w in v.providers() {
            if !have.contains(&w) {
                return Err(Error::field(
                    "config",
                    format!(
                        "voice: provider {w:?} does not exist in this team (add it with `chatstudio provider add`)"
                    ),
                ));
            }
        }
    }
    let Some(p) = Pipeline::from_config(config)? else {
        return Ok(());
    };
    for n in &p.nodes {
        if let Ok((Node::Llm(l), _)) = Node::parse(n) {
            actions::check_node(db, team_id, &n.id, &l.custom_actions, &l.tools).await?;
        }
    }
    let wanted = p.providers();
    if wanted.is_empty() {
        return Ok(());
    }
    let have = providers::names(db, team_id).await?;
    for w in wanted {
        if !have.contains(&w) {
            return Err(Error::field(
                "pipeline",
                format!(
                    "provider {w:?} does not exist in this team (add it with `chatstudio provider add`)"
                ),
            ));
        }
    }
    Ok(())
}

fn version_of(m: &chatbot::Model) -> Version {
    Version {
        id: m.public_id,
        name: m.name.clone(),
        version_number: m.version_number,
        is_default_version: m.is_default_version,
        version_description: m.version_description.clone(),
        created_at: m.created_at,
    }
}

fn assemble(head: chatbot::Model, versions: Vec<Version>) -> Chatbot {
    Chatbot {
        id: head.public_id,
        name: head.name,
        description: head.description,
        version_number: head.version_number,
        config: head.config,
        created_at: head.created_at,
        updated_at: head.updated_at,
        versions,
    }
}

fn live_heads(team_id: TeamId) -> sea_orm::Select<chatbot::Entity> {
    chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::WorkingVersionId.is_null())
        .filter(chatbot::Column::IsArchived.eq(false))
}

/// Loads the live snapshots of several families in one query.
async fn versions_for<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    heads: &[chatbot::Model],
) -> Result<std::collections::HashMap<i64, Vec<Version>>> {
    let mut by_family: std::collections::HashMap<i64, Vec<Version>> = Default::default();
    if heads.is_empty() {
        return Ok(by_family);
    }
    let rows = chatbot::Entity::find()
        .filter(chatbot::Column::WorkingVersionId.is_in(heads.iter().map(|h| h.id)))
        .filter(chatbot::Column::IsArchived.eq(false))
        .order_by_asc(chatbot::Column::VersionNumber)
        .all(db)
        .await?;
    for r in rows {
        if let Some(family) = r.working_version_id {
            by_family.entry(family).or_default().push(version_of(&r));
        }
    }
    Ok(by_family)
}

pub async fn create(
    db: &impl Writes,
    team_id: TeamId,
    owner_id: Option<i64>,
    name: &str,
    description: Option<&str>,
    config: Option<Value>,
) -> Result<Chatbot> {
    let db = db.writer();
    let name = validate_name(name)?;
    let config = validate_config(config)?;
    check_providers(db, team_id, &config).await?;
    let now = store::now();
    let head = chatbot::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(team_id.0),
        working_version_id: Set(None),
        name: Set(name),
        description: Set(description.unwrap_or("").to_string()),
        config: Set(config),
        version_number: Set(1),
        is_default_version: Set(false),
        is_archived: Set(false),
        version_description: Set(String::new()),
        owner_id: Set(owner_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(assemble(head, Vec::new()))
}

pub(crate) async fn head_row<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    id: Uuid,
) -> Result<chatbot::Model> {
    live_heads(team_id)
        .filter(chatbot::Column::PublicId.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(NOT_FOUND))
}

/// The row id of a team's chatbot family (its working version), by public id.
pub async fn family_of(db: &impl Writes, team_id: TeamId, id: Uuid) -> Result<ChatbotId> {
    Ok(ChatbotId(head_row(db.writer(), team_id, id).await?.id))
}

/// The working version with its live snapshots; snapshots, archived chatbots and
/// other teams' chatbots are all "not found".
pub async fn get(db: &impl Reads, team_id: TeamId, id: Uuid) -> Result<Chatbot> {
    let db = db.reader();
    let head = head_row(db, team_id, id).await?;
    let mut versions = versions_for(db, std::slice::from_ref(&head)).await?;
    let v = versions.remove(&head.id).unwrap_or_default();
    Ok(assemble(head, v))
}

/// A page of the team's live working versions, newest first: two queries for
/// the page (plus the count on a first page), whatever the page size.
pub async fn list(domain: &Domain, team_id: TeamId, req: &PageRequest) -> Result<Page<Chatbot>> {
    let db = &domain.db.read;
    let listing = Listing::<chatbot::Entity> {
        kind: "experiments",
        order: Order::Desc,
        created_at: chatbot::Column::CreatedAt,
        id: chatbot::Column::Id,
    };
    let page = pagination::paginate(
        db,
        &domain.cursors,
        &listing,
        live_heads(team_id),
        req,
        |m| Position {
            created_at: m.created_at,
            id: m.id,
        },
    )
    .await?;
    let mut versions = versions_for(db, &page.items).await?;
    Ok(page.map(|h| {
        let v = versions.remove(&h.id).unwrap_or_default();
        assemble(h, v)
    }))
}

/// All of a team's live chatbots, oldest first (for the CLI).
pub async fn list_all(db: &impl Reads, team_id: TeamId) -> Result<Vec<Chatbot>> {
    let db = db.reader();
    let heads = live_heads(team_id)
        .order_by_asc(chatbot::Column::CreatedAt)
        .order_by_asc(chatbot::Column::Id)
        .all(db)
        .await?;
    let mut versions = versions_for(db, &heads).await?;
    Ok(heads
        .into_iter()
        .map(|h| {
            let v = versions.remove(&h.id).unwrap_or_default();
            assemble(h, v)
        })
        .collect())
}

/// Finds a live chatbot by public id across teams (CLI administration only),
/// returning its team id too.
pub async fn find_any_team(db: &impl Reads, id: Uuid) -> Result<(TeamId, Chatbot)> {
    let db = db.reader();
    let head = chatbot::Entity::find()
        .filter(chatbot::Column::PublicId.eq(id))
        .filter(chatbot::Column::WorkingVersionId.is_null())
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(format!("no chatbot with id {id}")))?;
    let team = TeamId(head.team_id);
    Ok((team, get(db, team, id).await?))
}

/// Updates the working version (snapshots are immutable).
pub async fn update_working(
    db: &impl Writes,
    team_id: TeamId,
    id: Uuid,
    name: &str,
    description: Option<&str>,
    config: Option<Value>,
) -> Result<Chatbot> {
    let db = db.writer();
    let name = validate_name(name)?;
    let head = head_row(db, team_id, id).await?;
    let mut am: chatbot::ActiveModel = head.into();
    am.name = Set(name);
    if let Some(d) = description {
        am.description = Set(d.to_string());
    }
    if let Some(c) = config {
        let c = validate_config(Some(c))?;
        check_providers(db, team_id, &c).await?;
        am.config = Set(c);
    }
    am.updated_at = Set(store::now());
    am.update(db).await?;
    get(db, team_id, id).await
}

/// Creates or updates a working version from a chatbot file, with the
/// custom actions it declares (`actions`, their schemas and secrets read by
/// the caller), in one transaction. Without an `id`, the file's name picks
/// the chatbot; more than one live chatbot with that name is ambiguous and
/// refused.
pub async fn apply(
    db: &sea_orm::DatabaseConnection,
    secrets: &crate::secrets::SecretBox,
    team_id: TeamId,
    owner_id: Option<i64>,
    file: BotFile,
    declared: Vec<actions::NewAction>,
) -> Result<(Chatbot, bool)> {
    let txn = db.begin().await?;
    for a in declared {
        actions::put(&txn, secrets, team_id, a).await?;
    }
    let target = match file.id {
        Some(id) => Some(head_row(&txn, team_id, id).await?.public_id),
        None => {
            let name = validate_name(&file.name)?;
            let matches = live_heads(team_id)
                .filter(chatbot::Column::Name.eq(name.clone()))
                .limit(2)
                .all(&txn)
                .await?;
            match matches.as_slice() {
                [] => None,
                [one] => Some(one.public_id),
                _ => {
                    return Err(Error::Conflict(format!(
                        "more than one chatbot is named {name:?}; add its id to the file"
                    )));
                }
            }
        }
    };
    let out = match target {
        Some(id) => (
            update_working(
                &txn,
                team_id,
                id,
                &file.name,
                file.description.as_deref(),
                file.config,
            )
            .await?,
            false,
        ),
        None => (
            create(
                &txn,
                team_id,
                owner_id,
                &file.name,
                file.description.as_deref(),
                file.config,
            )
            .await?,
            true,
        ),
    };
    txn.commit().await?;
    Ok(out)
}

/// Snapshots the working version as the next numbered version, in one
/// transaction. The first version is always published; later ones only when
/// `publish` is set, which demotes the previous published version.
pub async fn create_version<C: ConnectionTrait + TransactionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    id: Uuid,
    description: &str,
    publish: bool,
) -> Result<Version> {
    let txn = db.begin().await?;
    // Row lock on PostgreSQL so concurrent publishes of one family serialise;
    // SQLite has a single writer already.
    let head = live_heads(team_id)
        .filter(chatbot::Column::PublicId.eq(id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found(NOT_FOUND))?;
    let number = head.version_number;
    let make_default = number == 1 || publish;
    if make_default {
        chatbot::Entity::update_many()
            .col_expr(chatbot::Column::IsDefaultVersion, false.into())
            .filter(chatbot::Column::WorkingVersionId.eq(head.id))
            .filter(chatbot::Column::IsDefaultVersion.eq(true))
            .exec(&txn)
            .await?;
    }
    let action_snapshot = actions::freeze(&txn, team_id, &head.config).await?;
    let now = store::now();
    let snap = chatbot::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(team_id.0),
        working_version_id: Set(Some(head.id)),
        name: Set(head.name.clone()),
        description: Set(head.description.clone()),
        config: Set(head.config.clone()),
        action_snapshot: Set(action_snapshot),
        version_number: Set(number),
        is_default_version: Set(make_default),
        is_archived: Set(false),
        version_description: Set(description.to_string()),
        owner_id: Set(head.owner_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut am: chatbot::ActiveModel = head.into();
    am.version_number = Set(number + 1);
    am.updated_at = Set(now);
    am.update(&txn).await?;
    txn.commit().await?;
    Ok(version_of(&snap))
}

/// Archives a chatbot and all its versions in one statement.
pub async fn archive(db: &impl Writes, team_id: TeamId, id: Uuid) -> Result<()> {
    let db = db.writer();
    let head = head_row(db, team_id, id).await?;
    chatbot::Entity::update_many()
        .col_expr(chatbot::Column::IsArchived, true.into())
        .col_expr(chatbot::Column::UpdatedAt, store::now().into())
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(
            Condition::any()
                .add(chatbot::Column::Id.eq(head.id))
                .add(chatbot::Column::WorkingVersionId.eq(head.id)),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Resolves the version a conversation talks to. `id` may name a working
/// version or a snapshot (archived rows excluded). `version`:
/// - `None` (unversioned path): a snapshot id runs that snapshot; a working
///   version's id runs the published version, else the working version;
/// - `Some(0)`: the family's published version, else the working version;
/// - `Some(n)`: the working version when `n` is its own number, else snapshot `n`.
///
/// Decision: an unknown version number is a 404 (the original answers 500).
pub async fn resolve(
    db: &impl Reads,
    team_id: TeamId,
    id: Uuid,
    version: Option<i32>,
) -> Result<Resolved> {
    let db = db.reader();
    let row = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::PublicId.eq(id))
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(NOT_FOUND))?;
    let family_id = row.working_version_id.unwrap_or(row.id);
    if version.is_none() && row.working_version_id.is_some() {
        return resolved(&row, family_id);
    }
    let family = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::IsArchived.eq(false))
        .filter(
            Condition::any()
                .add(chatbot::Column::Id.eq(family_id))
                .add(chatbot::Column::WorkingVersionId.eq(family_id)),
        )
        .all(db)
        .await?;
    let head = family.iter().find(|r| r.working_version_id.is_none());
    let pick = match version.unwrap_or(0) {
        0 => family.iter().find(|r| r.is_default_version).or(head),
        n if head.is_some_and(|h| h.version_number == n) => head,
        n => family
            .iter()
            .find(|r| r.working_version_id.is_some() && r.version_number == n),
    };
    let v = version.unwrap_or(0);
    let r = pick
        .ok_or_else(|| Error::not_found(format!("Version {v} of this chatbot does not exist.")))?;
    resolved(r, family_id)
}

/// The public id of a chatbot row.
pub async fn public_id_of(db: &impl Reads, row_id: i64) -> Result<Uuid> {
    let db = db.reader();
    chatbot::Entity::find_by_id(row_id)
        .one(db)
        .await?
        .map(|m| m.public_id)
        .ok_or_else(|| Error::not_found(NOT_FOUND))
}

/// Exactly the row an id names (a working version or a snapshot; not
/// archived): what a session is bound to.
pub async fn find_row(db: &impl Reads, team_id: TeamId, id: Uuid) -> Result<Resolved> {
    let db = db.reader();
    let row = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::PublicId.eq(id))
        .filter(chatbot::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(NOT_FOUND))?;
    resolved(&row, row.working_version_id.unwrap_or(row.id))
}

fn resolved(r: &chatbot::Model, family_id: i64) -> Result<Resolved> {
    Ok(Resolved {
        row_id: ChatbotId(r.id),
        family_id: ChatbotId(family_id),
        public_id: r.public_id,
        name: r.name.clone(),
        version_number: r.version_number,
        is_working: r.working_version_id.is_none(),
        is_published: r.is_default_version,
        config: r.config.clone(),
        actions: actions::thawed(&r.action_snapshot)?,
    })
}
