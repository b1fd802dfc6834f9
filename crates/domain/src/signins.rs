//! Console sign-ins: a browser session opened by a correct email and
//! password. The cookie carries a random token; only its SHA-256 is stored,
//! beside the session's CSRF token and the team last opened. Sessions end
//! at sign-out, when the password changes, or [`LIFETIME`] after sign-in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use store::entity::{console_session, user};

use crate::auth::AuthContext;
use crate::conn::{Reads, Writes};
use crate::ids::{TeamId, UserId};
use crate::{Error, Result};

/// How long a sign-in lasts (Django's default session age).
pub const LIFETIME: chrono::Duration = chrono::Duration::days(14);

/// An open sign-in, as a request sees it.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub id: i64,
    pub user_id: UserId,
    pub csrf_token: String,
    pub team_id: Option<TeamId>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// 32 random bytes, URL-safe: sign-in and CSRF tokens.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Opens a sign-in for `user_id`; the token (the cookie's value) is returned
/// once and never stored.
pub async fn open(
    db: &impl Writes,
    user_id: UserId,
    team_id: Option<TeamId>,
) -> Result<(String, SignIn)> {
    let token = new_token();
    let now = store::now();
    let m = console_session::ActiveModel {
        token_hash: Set(token_hash(&token)),
        user_id: Set(user_id.0),
        csrf_token: Set(new_token()),
        team_id: Set(team_id.map(|t| t.0)),
        created_at: Set(now),
        expires_at: Set(now + LIFETIME),
        ..Default::default()
    }
    .insert(db.writer())
    .await?;
    Ok((token, from_row(m)))
}

fn from_row(m: console_session::Model) -> SignIn {
    SignIn {
        id: m.id,
        user_id: UserId(m.user_id),
        csrf_token: m.csrf_token,
        team_id: m.team_id.map(TeamId),
        expires_at: m.expires_at,
    }
}

/// The open sign-in a cookie's token names: none when unknown, expired, or
/// its user is deactivated.
pub async fn find(db: &impl Reads, token: &str) -> Result<Option<SignIn>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let db = db.reader();
    let Some(m) = console_session::Entity::find()
        .filter(console_session::Column::TokenHash.eq(token_hash(token)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if m.expires_at <= store::now() {
        return Ok(None);
    }
    let active = user::Entity::find_by_id(m.user_id)
        .one(db)
        .await?
        .is_some_and(|u| u.is_active && u.password_hash.is_some());
    Ok(active.then(|| from_row(m)))
}

/// Whether `sent` is the sign-in's CSRF token (compared in constant time).
pub fn csrf_matches(sign_in: &SignIn, sent: &str) -> bool {
    use subtle::ConstantTimeEq;
    !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(sign_in.csrf_token.as_bytes()))
}

/// Remembers the team the person opened last.
pub async fn set_team(db: &impl Writes, sign_in: &SignIn, team_id: TeamId) -> Result<()> {
    if sign_in.team_id == Some(team_id) {
        return Ok(());
    }
    console_session::Entity::update_many()
        .col_expr(console_session::Column::TeamId, Expr::value(team_id.0))
        .filter(console_session::Column::Id.eq(sign_in.id))
        .exec(db.writer())
        .await?;
    Ok(())
}

/// Ends the sign-in a token names (sign-out).
pub async fn end(db: &impl Writes, token: &str) -> Result<()> {
    console_session::Entity::delete_many()
        .filter(console_session::Column::TokenHash.eq(token_hash(token)))
        .exec(db.writer())
        .await?;
    Ok(())
}

/// Deletes sign-ins past their expiry (housekeeping).
pub async fn sweep_expired(db: &impl Writes) -> Result<u64> {
    let r = console_session::Entity::delete_many()
        .filter(console_session::Column::ExpiresAt.lte(store::now()))
        .exec(db.writer())
        .await?;
    Ok(r.rows_affected)
}

/// The API caller a sign-in stands for: its user in the team last opened in
/// the console (or their only team). A chat viewer's cookie only reads.
pub async fn api_caller(db: &impl Reads, sign_in: &SignIn) -> Result<AuthContext> {
    let team_id = match sign_in.team_id {
        Some(t) => t,
        None => {
            let places = crate::users::places(db, sign_in.user_id).await?;
            match places.as_slice() {
                [only] => only.team_id,
                _ => return Err(Error::Unauthenticated(crate::auth::NO_MEMBERSHIP)),
            }
        }
    };
    let role = crate::users::role_in(db, sign_in.user_id, team_id)
        .await?
        .ok_or(Error::Unauthenticated(crate::auth::NO_MEMBERSHIP))?;
    Ok(AuthContext {
        team_id,
        user_id: Some(sign_in.user_id),
        key_id: None,
        read_only: !role.allows(crate::roles::Permission::ManageChatbots),
        role,
        oauth: None,
    })
}
