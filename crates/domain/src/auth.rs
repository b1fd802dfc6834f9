//! Who is calling: turns a presented API key into the team and user it acts for.

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ConnectionTrait, ExprTrait};
use sha2::{Digest, Sha256};
use store::entity::{api_key, membership, user};
use subtle::ConstantTimeEq;

use crate::conn::Reads;
use crate::ids::{TeamId, UserId};
use crate::roles::Role;
use crate::text_enum::stored;
use crate::{Error, Result};

pub const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
pub const INVALID_TOKEN: &str = "Invalid token.";
pub const USER_INACTIVE: &str = "User inactive or deleted.";
pub const NO_MEMBERSHIP: &str = "Incorrect authentication credentials.";

/// The authenticated caller. Every query a request makes is scoped by `team_id`.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub team_id: TeamId,
    pub user_id: Option<UserId>,
    pub key_id: Option<i64>,
    pub read_only: bool,
    pub role: Role,
    /// The OAuth2 grant, when the caller presented an access token (its
    /// scopes then limit what it may do; API keys and cookies have none).
    pub oauth: Option<crate::oauth::Grant>,
}

impl AuthContext {
    /// Read-only keys may only use safe methods; everything else is a 403
    /// decided before any object is looked up.
    pub fn ensure_can_write(&self) -> Result<()> {
        if self.read_only {
            Err(Error::PermissionDenied)
        } else {
            Ok(())
        }
    }
}

/// Checks an API key (`prefix.secret`). One query fetches the key, its user and
/// the user's membership in the key's team; the hash is compared in constant time.
pub async fn authenticate_api_key(db: &impl Reads, presented: &str) -> Result<AuthContext> {
    let db = db.reader();
    let presented = presented.trim();
    let Some((prefix, secret)) = presented.split_once('.') else {
        return Err(Error::Unauthenticated(INVALID_TOKEN));
    };
    if prefix.is_empty() || secret.is_empty() || prefix.len() > 16 {
        return Err(Error::Unauthenticated(INVALID_TOKEN));
    }
    let q = Query::select()
        .column((api_key::Entity, api_key::Column::Id))
        .column((api_key::Entity, api_key::Column::HashedKey))
        .column((api_key::Entity, api_key::Column::TeamId))
        .column((api_key::Entity, api_key::Column::UserId))
        .column((api_key::Entity, api_key::Column::ReadOnly))
        .column((user::Entity, user::Column::IsActive))
        .expr_as(
            Expr::col((membership::Entity, membership::Column::Role)),
            "role",
        )
        .from(api_key::Entity)
        .inner_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Id))
                .equals((api_key::Entity, api_key::Column::UserId)),
        )
        .left_join(
            membership::Entity,
            Expr::col((membership::Entity, membership::Column::UserId))
                .equals((api_key::Entity, api_key::Column::UserId))
                .and(
                    Expr::col((membership::Entity, membership::Column::TeamId))
                        .equals((api_key::Entity, api_key::Column::TeamId)),
                ),
        )
        .and_where(Expr::col((api_key::Entity, api_key::Column::Prefix)).eq(prefix))
        .and_where(Expr::col((api_key::Entity, api_key::Column::Revoked)).eq(false))
        .to_owned();
    let Some(row) = db.query_one(&q).await? else {
        return Err(Error::Unauthenticated(INVALID_TOKEN));
    };
    let hashed: String = row.try_get("", "hashed_key")?;
    let hashed =
        hex::decode(hashed).map_err(|e| Error::internal(format!("stored key hash: {e}")))?;
    let given = Sha256::digest(presented.as_bytes());
    if !bool::from(given[..].ct_eq(&hashed)) {
        return Err(Error::Unauthenticated(INVALID_TOKEN));
    }
    let active: bool = row.try_get("", "is_active")?;
    if !active {
        return Err(Error::Unauthenticated(USER_INACTIVE));
    }
    let role: Option<String> = row.try_get("", "role")?;
    let Some(role) = role else {
        return Err(Error::Unauthenticated(NO_MEMBERSHIP));
    };
    Ok(AuthContext {
        team_id: TeamId(row.try_get("", "team_id")?),
        user_id: Some(UserId(row.try_get("", "user_id")?)),
        key_id: Some(row.try_get("", "id")?),
        read_only: row.try_get("", "read_only")?,
        role: stored(&role)?,
        oauth: None,
    })
}
