//! Teams and their members. Creating a team also creates its owner user, to
//! whom the team's API keys belong.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionSession,
};
use store::entity::{membership, team, user};

use crate::conn::{Reads, Writes};
use crate::ids::TeamId;
use crate::{Error, Result};
use store::constraints::TEAM_SLUG;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Team {
    pub id: TeamId,
    pub slug: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<team::Model> for Team {
    fn from(m: team::Model) -> Self {
        Team {
            id: TeamId(m.id),
            slug: m.slug,
            name: m.name,
            created_at: m.created_at,
        }
    }
}

pub use crate::roles::{Permission, Role};

pub fn validate_slug(slug: &str) -> Result<()> {
    if slug.is_empty() || slug.len() > 50 {
        return Err(Error::BadRequest(
            "team slug must be 1 to 50 characters".into(),
        ));
    }
    if !slug
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::BadRequest(format!(
            "invalid team slug {slug:?}: use letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

/// Creates a team with its owner user and membership, in one transaction.
pub async fn create<C: ConnectionTrait + sea_orm::TransactionTrait + Reads + Writes>(
    db: &C,
    slug: &str,
    name: Option<&str>,
) -> Result<(Team, i64)> {
    validate_slug(slug)?;
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(slug);
    if name.chars().count() > 100 {
        return Err(Error::BadRequest(
            "team name must be at most 100 characters".into(),
        ));
    }
    let now = store::now();
    let txn = db.begin().await?;
    let t = team::ActiveModel {
        slug: Set(slug.to_string()),
        name: Set(name.to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| Error::unique(e, TEAM_SLUG, || format!("team {slug:?} already exists")))?;
    let owner = format!("{slug}-owner");
    let email = format!("owner@{slug}.chatstudio.local");
    let user_id = insert_member(&txn, TeamId(t.id), &owner, &email, Role::Owner).await?;
    txn.commit().await?;
    Ok((t.into(), user_id))
}

pub async fn list<C: ConnectionTrait + Reads + Writes>(db: &C) -> Result<Vec<Team>> {
    Ok(team::Entity::find()
        .order_by_asc(team::Column::Slug)
        .all(db)
        .await?
        .into_iter()
        .map(Team::from)
        .collect())
}

pub async fn by_slug(db: &impl Reads, slug: &str) -> Result<Team> {
    let db = db.reader();
    team::Entity::find()
        .filter(team::Column::Slug.eq(slug))
        .one(db)
        .await?
        .map(Team::from)
        .ok_or_else(|| Error::not_found(format!("no team with slug {slug:?}")))
}

pub async fn by_id(db: &impl Reads, id: TeamId) -> Result<Team> {
    team::Entity::find_by_id(id.0)
        .one(db.reader())
        .await?
        .map(Team::from)
        .ok_or_else(|| Error::not_found(format!("no team {id}")))
}

/// The user that owns a team (the first owner membership).
pub async fn owner_user_id(db: &impl Reads, team_id: TeamId) -> Result<i64> {
    let db = db.reader();
    membership::Entity::find()
        .filter(membership::Column::TeamId.eq(team_id))
        .filter(membership::Column::Role.eq(Role::Owner))
        .order_by_asc(membership::Column::Id)
        .one(db)
        .await?
        .map(|m| m.user_id)
        .ok_or_else(|| Error::internal(format!("team {team_id} has no owner")))
}

/// Adds a user to a team with a role (creating the user).
pub async fn add_member(
    db: &impl Writes,
    team_id: TeamId,
    username: &str,
    email: &str,
    role: Role,
) -> Result<i64> {
    insert_member(db.writer(), team_id, username, email, role).await
}

/// A new user and their membership of the team.
async fn insert_member<C: ConnectionTrait>(
    db: &C,
    team_id: TeamId,
    username: &str,
    email: &str,
    role: Role,
) -> Result<i64> {
    let now = store::now();
    let u = crate::users::insert_user(db, username, email).await?;
    membership::ActiveModel {
        team_id: Set(team_id.0),
        user_id: Set(u.id),
        role: Set(role.as_str().to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(u.id)
}

/// Whether a member of the team has this email (members may always chat with
/// their team's chatbots).
pub async fn has_member_email(db: &impl Reads, team_id: TeamId, email: &str) -> Result<bool> {
    use sea_orm::PaginatorTrait;
    use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
    let email = email.trim();
    if !email.contains('@') {
        return Ok(false);
    }
    let users = Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .and_where(Expr::expr(Func::lower(Expr::col(user::Column::Email))).eq(email.to_lowercase()))
        .to_owned();
    let n = membership::Entity::find()
        .filter(membership::Column::TeamId.eq(team_id))
        .filter(membership::Column::UserId.in_subquery(users))
        .count(db.reader())
        .await?;
    Ok(n > 0)
}
