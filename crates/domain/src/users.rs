//! People who sign in to the console, and their places in teams. A user is
//! found by email (any case); one user may be a member of several teams, each
//! with one role. Passwords are stored as argon2id PHC strings only.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionSession,
    TransactionTrait,
};
use store::constraints::USER_USERNAME;
use store::entity::{membership, team, user};

use crate::conn::{Reads, Writes};
use crate::ids::{TeamId, UserId};
use crate::roles::Role;
use crate::text_enum::stored;
use crate::{Error, Result};

/// Shortest password accepted (NIST SP 800-63B's floor for chosen secrets).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password hashed (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub can_sign_in: bool,
    pub is_active: bool,
}

/// A team the user belongs to, with their role in it.
#[derive(Debug, Clone)]
pub struct Place {
    pub team_id: TeamId,
    pub slug: String,
    pub role: Role,
}

/// A wrapper that never prints the password.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(text.into())
    }

    /// The password checked against the length rules.
    fn checked(&self) -> Result<&str> {
        let n = self.0.chars().count();
        if n < MIN_PASSWORD_LEN {
            return Err(Error::field(
                "password",
                format!(
                    "This password is too short. It must contain at least {MIN_PASSWORD_LEN} characters."
                ),
            ));
        }
        if self.0.len() > MAX_PASSWORD_LEN {
            return Err(Error::field(
                "password",
                format!("Ensure this field has no more than {MAX_PASSWORD_LEN} characters."),
            ));
        }
        Ok(&self.0)
    }
}

/// The text of a generated password, to show once.
pub fn reveal(p: &Password) -> String {
    p.0.clone()
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// argon2id with the crate's defaults (RFC 9106's second recommendation:
/// 19 MiB, 2 passes), as a PHC string with its own salt.
pub fn hash_password(password: &Password) -> Result<String> {
    let text = password.checked()?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(text.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("hashing a password: {e}")))
}

fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to check against when the email is unknown, so that a wrong email
/// takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password(&Password::new("decoy password, never matches")).unwrap_or_default()
    })
}

pub fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, host)| {
            !local.is_empty()
                && host.contains('.')
                && !host.starts_with('.')
                && !host.ends_with('.')
        })
        && !e.chars().any(char::is_whitespace);
    if valid {
        Ok(e.to_string())
    } else {
        Err(Error::field("email", "Enter a valid email address."))
    }
}

async fn by_email<C: sea_orm::ConnectionTrait>(db: &C, email: &str) -> Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(user::Column::Email))).eq(email.to_lowercase()))
        .order_by_asc(user::Column::Id)
        .one(db)
        .await?)
}

/// Adds a person to a team with a role: the user is created when no user has
/// the email, else the existing user joins; a password, when given, becomes
/// theirs. One transaction.
pub async fn add_to_team<C: TransactionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    email: &str,
    role: Role,
    password: Option<&Password>,
) -> Result<Member> {
    let email = normalize_email(email)?;
    let hash = password.map(hash_password).transpose()?;
    let txn = db.begin().await?;
    let now = store::now();
    let u = match by_email(&txn, &email).await? {
        Some(u) => u,
        None => insert_user(&txn, &email.to_lowercase(), &email).await?,
    };
    let taken = membership::Entity::find()
        .filter(membership::Column::TeamId.eq(team_id))
        .filter(membership::Column::UserId.eq(u.id))
        .one(&txn)
        .await?;
    if taken.is_some() {
        return Err(Error::Conflict(format!(
            "{email} is already a member of this team"
        )));
    }
    membership::ActiveModel {
        team_id: Set(team_id.0),
        user_id: Set(u.id),
        role: Set(role.as_str().to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut u: user::ActiveModel = u.into();
    if let Some(h) = hash {
        u.password_hash = Set(Some(h));
    }
    let u = u.update(&txn).await?;
    txn.commit().await?;
    Ok(Member {
        user_id: UserId(u.id),
        email: u.email,
        role,
        can_sign_in: u.password_hash.is_some(),
        is_active: u.is_active,
    })
}

/// A new active user (no password yet).
pub(crate) async fn insert_user<C: sea_orm::ConnectionTrait>(
    db: &C,
    username: &str,
    email: &str,
) -> Result<user::Model> {
    user::ActiveModel {
        username: Set(username.to_string()),
        email: Set(email.to_string()),
        is_active: Set(true),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| {
        Error::unique(e, USER_USERNAME, || {
            format!("user {username} already exists")
        })
    })
}

/// The team's members, by email.
pub async fn members(db: &impl Reads, team_id: TeamId) -> Result<Vec<Member>> {
    let db = db.reader();
    let ms = membership::Entity::find()
        .filter(membership::Column::TeamId.eq(team_id))
        .all(db)
        .await?;
    let users: std::collections::HashMap<i64, user::Model> = user::Entity::find()
        .filter(user::Column::Id.is_in(ms.iter().map(|m| m.user_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let mut out = ms
        .into_iter()
        .filter_map(|m| users.get(&m.user_id).map(|u| (m, u)))
        .map(|(m, u)| {
            Ok(Member {
                user_id: UserId(u.id),
                email: u.email.clone(),
                role: stored(&m.role)?,
                can_sign_in: u.password_hash.is_some(),
                is_active: u.is_active,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|m| m.email.to_lowercase());
    Ok(out)
}

/// Sets the password of the user with this email.
pub async fn set_password(db: &impl Writes, email: &str, password: &Password) -> Result<()> {
    let hash = hash_password(password)?;
    let u = by_email(db.writer(), email.trim())
        .await?
        .ok_or_else(|| Error::not_found(format!("no user with email {}", email.trim())))?;
    let id = u.id;
    let mut u: user::ActiveModel = u.into();
    u.password_hash = Set(Some(hash));
    u.update(db.writer()).await?;
    // A new password ends every open console sign-in of the person.
    store::entity::console_session::Entity::delete_many()
        .filter(store::entity::console_session::Column::UserId.eq(id))
        .exec(db.writer())
        .await?;
    Ok(())
}

/// Whether the team would keep an owner if `membership` stopped being one.
async fn keeps_an_owner<C: sea_orm::ConnectionTrait>(
    db: &C,
    team_id: TeamId,
    membership_id: i64,
) -> Result<bool> {
    let owners = membership::Entity::find()
        .filter(membership::Column::TeamId.eq(team_id))
        .filter(membership::Column::Role.eq(Role::Owner))
        .filter(membership::Column::Id.ne(membership_id))
        .all(db)
        .await?;
    Ok(!owners.is_empty())
}

/// Changes a member's role; the team's last owner keeps theirs.
pub async fn set_role<C: TransactionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    user_id: UserId,
    role: Role,
) -> Result<()> {
    let txn = db.begin().await?;
    let m = membership::Entity::find()
        .filter(membership::Column::TeamId.eq(team_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("not a member of this team"))?;
    if m.role == Role::Owner.as_str()
        && role != Role::Owner
        && !keeps_an_owner(&txn, team_id, m.id).await?
    {
        return Err(Error::Conflict("a team keeps at least one owner".into()));
    }
    let mut am: membership::ActiveModel = m.into();
    am.role = Set(role.as_str().to_string());
    am.update(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// The role of a team's member, by user id.
pub async fn role_of(db: &impl Reads, team_id: TeamId, user_id: UserId) -> Result<Role> {
    role_in(db, user_id, team_id)
        .await?
        .ok_or_else(|| Error::not_found("not a member of this team"))
}

/// The person's role in a team, when they are a member.
pub async fn role_in(db: &impl Reads, user_id: UserId, team_id: TeamId) -> Result<Option<Role>> {
    membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .filter(membership::Column::TeamId.eq(team_id))
        .one(db.reader())
        .await?
        .map(|m| stored(&m.role))
        .transpose()
}

/// The email of a team's member, by user id (another team's user is not found).
pub async fn member_email(db: &impl Reads, team_id: TeamId, user_id: UserId) -> Result<String> {
    role_of(db, team_id, user_id).await?;
    email(db, user_id).await
}

/// Takes a member out of a team (the user stays, with their other teams).
/// The team's last owner cannot be removed.
pub async fn remove_from_team<C: TransactionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    email: &str,
) -> Result<()> {
    let txn = db.begin().await?;
    let not_member = || Error::not_found(format!("{} is not a member of this team", email.trim()));
    let u = by_email(&txn, email.trim()).await?.ok_or_else(not_member)?;
    let m = membership::Entity::find()
        .filter(membership::Column::TeamId.eq(team_id))
        .filter(membership::Column::UserId.eq(u.id))
        .one(&txn)
        .await?
        .ok_or_else(not_member)?;
    if m.role == Role::Owner.as_str() && !keeps_an_owner(&txn, team_id, m.id).await? {
        return Err(Error::Conflict("a team keeps at least one owner".into()));
    }
    membership::Entity::delete_by_id(m.id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Checks an email and password; the user when both match an active user
/// who may sign in. Every failure is the same answer, and takes as long.
pub async fn verify_login(db: &impl Reads, email: &str, password: &str) -> Result<Option<UserId>> {
    let u = by_email(db.reader(), email.trim()).await?;
    let phc = u
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let password = password.to_string();
    let matched = tokio::task::spawn_blocking(move || verify(&phc, &password))
        .await
        .map_err(|e| Error::internal_from("verifying a password", e))?;
    Ok(match u {
        Some(u) if matched && u.is_active && u.password_hash.is_some() => Some(UserId(u.id)),
        _ => None,
    })
}

/// The teams a user belongs to, by slug.
pub async fn places(db: &impl Reads, user_id: UserId) -> Result<Vec<Place>> {
    let db = db.reader();
    let ms = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let teams: std::collections::HashMap<i64, team::Model> = team::Entity::find()
        .filter(team::Column::Id.is_in(ms.iter().map(|m| m.team_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let mut out = ms
        .into_iter()
        .filter_map(|m| teams.get(&m.team_id).map(|t| (m, t.clone())))
        .map(|(m, t)| {
            Ok(Place {
                team_id: TeamId(t.id),
                slug: t.slug,
                role: stored(&m.role)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.slug.cmp(&b.slug));
    Ok(out)
}

/// The email of a user (a key's user is the participant on API channels).
pub async fn email(db: &impl Reads, user_id: UserId) -> Result<String> {
    user::Entity::find_by_id(user_id.0)
        .one(db.reader())
        .await?
        .map(|u| u.email)
        .ok_or_else(|| Error::internal(format!("user {user_id} vanished")))
}
