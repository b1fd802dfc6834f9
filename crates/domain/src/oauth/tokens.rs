//! The token endpoint's grants, revocation and introspection, and the
//! bearer check API v1 runs on every request that presents a token.

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, ExprTrait,
    QueryFilter, Set, TransactionTrait,
};
use store::entity::{membership, oauth_code, oauth_token, user};

use super::codes::{ChallengeMethod, verifier_matches};
use super::{
    ACCESS_LIFETIME, App, AppKind, ErrorCode, Grant, REFRESH_LIFETIME, Scope, Scopes, failure,
    hash, new_secret,
};
use crate::auth::{AuthContext, NO_MEMBERSHIP, USER_INACTIVE};
use crate::conn::Reads;
use crate::ids::{TeamId, UserId};
use crate::roles::{Permission, Role};
use crate::text_enum::{stored, text_enum};
use crate::{Domain, Error, Result};

text_enum! {
    pub enum TokenKind {
        Access = "access",
        Refresh = "refresh",
    }
}

/// What the token endpoint answers on success (RFC 6749 §5.1).
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: Scopes,
}

struct Holder {
    team_id: TeamId,
    app_id: i64,
    user_id: Option<UserId>,
    family: String,
}

async fn insert(
    txn: &DatabaseTransaction,
    kind: TokenKind,
    h: &Holder,
    scope: Scopes,
) -> Result<String> {
    let token = new_secret();
    let now = store::now();
    let lifetime = match kind {
        TokenKind::Access => ACCESS_LIFETIME,
        TokenKind::Refresh => REFRESH_LIFETIME,
    };
    oauth_token::ActiveModel {
        team_id: Set(h.team_id.0),
        token_hash: Set(hash(&token)),
        kind: Set(kind.as_str().into()),
        app_id: Set(h.app_id),
        user_id: Set(h.user_id.map(|u| u.0)),
        scope: Set(scope.to_string()),
        family: Set(h.family.clone()),
        created_at: Set(now),
        expires_at: Set(now + lifetime),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(token)
}

async fn issue_pair(txn: &DatabaseTransaction, h: &Holder, scope: Scopes) -> Result<Issued> {
    Ok(Issued {
        access_token: insert(txn, TokenKind::Access, h, scope).await?,
        refresh_token: Some(insert(txn, TokenKind::Refresh, h, scope).await?),
        expires_in: ACCESS_LIFETIME.num_seconds(),
        scope,
    })
}

/// Revokes every live token of a grant.
async fn revoke_family(db: &impl sea_orm::ConnectionTrait, family: &str) -> Result<()> {
    oauth_token::Entity::update_many()
        .col_expr(oauth_token::Column::RevokedAt, Expr::value(store::now()))
        .filter(oauth_token::Column::Family.eq(family))
        .filter(oauth_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

fn grant_refused(description: &str) -> Error {
    failure(ErrorCode::InvalidGrant, description)
}

async fn still_member(db: &impl Reads, user: UserId, team: TeamId) -> Result<bool> {
    Ok(crate::users::role_in(db, user, team).await?.is_some())
}

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5). A code
/// is used at most once: presenting it again revokes what it gave.
pub async fn exchange_code(
    domain: &Domain,
    app: &App,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Issued> {
    let txn = domain.db.write.begin().await?;
    let Some(c) = oauth_code::Entity::find()
        .filter(oauth_code::Column::CodeHash.eq(hash(code)))
        .one(&txn)
        .await?
    else {
        return Err(grant_refused("unknown authorization code"));
    };
    if c.app_id != app.id {
        return Err(grant_refused("the code was issued to another client"));
    }
    // Claimed atomically: of two concurrent redemptions only one succeeds.
    let claimed = oauth_code::Entity::update_many()
        .col_expr(oauth_code::Column::UsedAt, Expr::value(store::now()))
        .filter(oauth_code::Column::Id.eq(c.id))
        .filter(oauth_code::Column::UsedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        revoke_family(&txn, &c.family).await?;
        txn.commit().await?;
        return Err(grant_refused(
            "the code was already used; the tokens it gave are revoked",
        ));
    }
    // A failed redemption still uses the code up, so a verifier cannot be
    // guessed at by retrying.
    if let Err(e) = redeemable(&txn, app, &c, redirect_uri, verifier).await {
        txn.commit().await?;
        return Err(e);
    }
    let holder = Holder {
        team_id: TeamId(c.team_id),
        app_id: app.id,
        user_id: Some(UserId(c.user_id)),
        family: c.family.clone(),
    };
    let issued = issue_pair(&txn, &holder, Scopes::parse(&c.scope)?).await?;
    txn.commit().await?;
    Ok(issued)
}

async fn redeemable(
    txn: &DatabaseTransaction,
    app: &App,
    c: &oauth_code::Model,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<()> {
    if c.expires_at <= store::now() {
        return Err(grant_refused("the authorization code has expired"));
    }
    if redirect_uri.is_some_and(|u| u != c.redirect_uri)
        || (redirect_uri.is_none() && app.redirect_uris.len() > 1)
    {
        return Err(grant_refused(
            "redirect_uri does not match the authorization request",
        ));
    }
    if let (Some(challenge), Some(method)) = (&c.code_challenge, &c.challenge_method) {
        let method: ChallengeMethod = stored(method)?;
        match verifier {
            None | Some("") => return Err(grant_refused("code_verifier required (PKCE)")),
            Some(v) if !verifier_matches(challenge, method, v) => {
                return Err(grant_refused(
                    "the code_verifier does not match the challenge",
                ));
            }
            Some(_) => {}
        }
    }
    if !still_member(txn, UserId(c.user_id), TeamId(c.team_id)).await? {
        return Err(grant_refused("the user is no longer a member of the team"));
    }
    Ok(())
}

/// `grant_type=refresh_token` (RFC 6749 §6): the refresh token is rotated;
/// a rotated (or revoked) one presented again revokes its whole grant.
pub async fn refresh(
    domain: &Domain,
    app: &App,
    token: &str,
    scope: Option<Scopes>,
) -> Result<Issued> {
    let txn = domain.db.write.begin().await?;
    let Some(t) = oauth_token::Entity::find()
        .filter(oauth_token::Column::TokenHash.eq(hash(token)))
        .filter(oauth_token::Column::Kind.eq(TokenKind::Refresh))
        .one(&txn)
        .await?
    else {
        return Err(grant_refused("unknown refresh token"));
    };
    if t.app_id != app.id {
        return Err(grant_refused(
            "the refresh token was issued to another client",
        ));
    }
    if t.revoked_at.is_none() {
        if t.expires_at <= store::now() {
            return Err(grant_refused("the refresh token has expired"));
        }
        let granted = Scopes::parse(&t.scope)?;
        if scope.is_some_and(|s| !s.is_empty() && !s.is_subset_of(granted)) {
            return Err(failure(
                ErrorCode::InvalidScope,
                "a refresh cannot widen the granted scope",
            ));
        }
    }
    let rotated = oauth_token::Entity::update_many()
        .col_expr(oauth_token::Column::RevokedAt, Expr::value(store::now()))
        .filter(oauth_token::Column::Id.eq(t.id))
        .filter(oauth_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !rotated {
        revoke_family(&txn, &t.family).await?;
        txn.commit().await?;
        return Err(grant_refused(
            "the refresh token was already used or revoked; every token of its grant is now revoked",
        ));
    }
    let scope = match scope {
        Some(s) if !s.is_empty() => s,
        _ => Scopes::parse(&t.scope)?,
    };
    let user = t.user_id.map(UserId);
    let team = TeamId(t.team_id);
    if let Some(u) = user
        && !still_member(&txn, u, team).await?
    {
        return Err(grant_refused("the user is no longer a member of the team"));
    }
    // The access tokens the old refresh token stood beside end with it.
    oauth_token::Entity::update_many()
        .col_expr(oauth_token::Column::RevokedAt, Expr::value(store::now()))
        .filter(oauth_token::Column::Family.eq(&t.family))
        .filter(oauth_token::Column::Kind.eq(TokenKind::Access))
        .filter(oauth_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    let holder = Holder {
        team_id: team,
        app_id: app.id,
        user_id: user,
        family: t.family.clone(),
    };
    let issued = issue_pair(&txn, &holder, scope).await?;
    txn.commit().await?;
    Ok(issued)
}

/// `grant_type=client_credentials` (RFC 6749 §4.4): machine applications
/// only, `chat:start` only, no refresh token.
pub async fn client_credentials(
    domain: &Domain,
    app: &App,
    scope: Option<Scopes>,
) -> Result<Issued> {
    if app.kind != AppKind::Machine || !app.confidential {
        return Err(failure(
            ErrorCode::UnauthorizedClient,
            "only machine applications may use client credentials",
        ));
    }
    let scope = match scope {
        Some(s) if !s.is_empty() => s,
        _ => app.grantable(),
    };
    if !scope.is_subset_of(app.grantable()) {
        return Err(failure(
            ErrorCode::InvalidScope,
            "a machine application may only be granted chat:start",
        ));
    }
    let txn = domain.db.write.begin().await?;
    let holder = Holder {
        team_id: app.team_id,
        app_id: app.id,
        user_id: None,
        family: uuid::Uuid::new_v4().to_string(),
    };
    let access_token = insert(&txn, TokenKind::Access, &holder, scope).await?;
    txn.commit().await?;
    Ok(Issued {
        access_token,
        refresh_token: None,
        expires_in: ACCESS_LIFETIME.num_seconds(),
        scope,
    })
}

/// RFC 7009: revokes a token issued to `app`. A refresh token takes its
/// whole grant with it. Unknown tokens, and other clients' tokens, are
/// quietly left alone (the answer is the same, so nothing is learned).
pub async fn revoke(domain: &Domain, app: &App, token: &str) -> Result<()> {
    let Some(t) = oauth_token::Entity::find()
        .filter(oauth_token::Column::TokenHash.eq(hash(token)))
        .filter(oauth_token::Column::AppId.eq(app.id))
        .one(&domain.db.write)
        .await?
    else {
        return Ok(());
    };
    match stored::<TokenKind>(&t.kind)? {
        TokenKind::Refresh => revoke_family(&domain.db.write, &t.family).await,
        TokenKind::Access => {
            oauth_token::Entity::update_many()
                .col_expr(oauth_token::Column::RevokedAt, Expr::value(store::now()))
                .filter(oauth_token::Column::Id.eq(t.id))
                .filter(oauth_token::Column::RevokedAt.is_null())
                .exec(&domain.db.write)
                .await?;
            Ok(())
        }
    }
}

/// What RFC 7662 says of an active token.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub scope: Scopes,
    pub client_id: String,
    pub kind: TokenKind,
    pub username: Option<String>,
    pub team_slug: String,
    pub issued_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Introspects a token for an authenticated client of the same team; a
/// token that is unknown, revoked, expired or another team's is inactive
/// (`None`).
pub async fn introspect(db: &impl Reads, app: &App, token: &str) -> Result<Option<Introspection>> {
    let Some(t) = oauth_token::Entity::find()
        .filter(oauth_token::Column::TokenHash.eq(hash(token)))
        .filter(oauth_token::Column::TeamId.eq(app.team_id))
        .one(db.reader())
        .await?
    else {
        return Ok(None);
    };
    if t.revoked_at.is_some() || t.expires_at <= store::now() {
        return Ok(None);
    }
    let owner = store::entity::oauth_app::Entity::find_by_id(t.app_id)
        .one(db.reader())
        .await?
        .ok_or_else(|| Error::internal("token of a vanished application"))?;
    let username = match t.user_id {
        Some(u) => Some(crate::users::email(db, UserId(u)).await?),
        None => None,
    };
    Ok(Some(Introspection {
        scope: Scopes::parse(&t.scope)?,
        client_id: owner.client_id,
        kind: stored(&t.kind)?,
        username,
        team_slug: crate::teams::by_id(db, TeamId(t.team_id)).await?.slug,
        issued_at: t.created_at,
        expires_at: t.expires_at,
    }))
}

/// A live access token and what it is for.
#[derive(Debug, Clone)]
pub struct Live {
    pub team_id: TeamId,
    pub user_id: Option<UserId>,
    pub grant: Grant,
}

/// The live access token a bearer string is, if it is one.
pub async fn live(db: &impl Reads, token: &str) -> Result<Option<Live>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let Some(t) = oauth_token::Entity::find()
        .filter(oauth_token::Column::TokenHash.eq(hash(token)))
        .filter(oauth_token::Column::Kind.eq(TokenKind::Access))
        .filter(oauth_token::Column::RevokedAt.is_null())
        .filter(oauth_token::Column::ExpiresAt.gt(store::now()))
        .one(db.reader())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Live {
        team_id: TeamId(t.team_id),
        user_id: t.user_id.map(UserId),
        grant: Grant {
            app_id: t.app_id,
            scopes: Scopes::parse(&t.scope)?,
            machine: t.user_id.is_none(),
        },
    }))
}

/// The API caller an access token stands for, when it is a live one (an
/// unknown or expired token is not an error here: the caller then tries it
/// as an API key, as the original's authenticator order does). A user's
/// token acts as its user in the token's team, and only while they are a
/// member; a chat viewer's token only reads, as their console cookie does.
/// One query, like an API key's check.
pub async fn caller(db: &impl Reads, token: &str) -> Result<Option<AuthContext>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let t = oauth_token::Entity;
    let q = Query::select()
        .column((t, oauth_token::Column::TeamId))
        .column((t, oauth_token::Column::UserId))
        .column((t, oauth_token::Column::AppId))
        .column((t, oauth_token::Column::Scope))
        .expr_as(
            Expr::col((user::Entity, user::Column::IsActive)),
            "is_active",
        )
        .expr_as(
            Expr::col((membership::Entity, membership::Column::Role)),
            "role",
        )
        .from(t)
        .left_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Id)).equals((t, oauth_token::Column::UserId)),
        )
        .left_join(
            membership::Entity,
            Expr::col((membership::Entity, membership::Column::UserId))
                .equals((t, oauth_token::Column::UserId))
                .and(
                    Expr::col((membership::Entity, membership::Column::TeamId))
                        .equals((t, oauth_token::Column::TeamId)),
                ),
        )
        .and_where(Expr::col((t, oauth_token::Column::TokenHash)).eq(hash(token)))
        .and_where(Expr::col((t, oauth_token::Column::Kind)).eq(TokenKind::Access.as_str()))
        .and_where(Expr::col((t, oauth_token::Column::RevokedAt)).is_null())
        .and_where(Expr::col((t, oauth_token::Column::ExpiresAt)).gt(store::now()))
        .to_owned();
    let Some(row) = db.reader().query_one(&q).await? else {
        return Ok(None);
    };
    let user_id: Option<i64> = row.try_get("", "user_id")?;
    let role = match user_id {
        None => Role::ChatViewer,
        Some(_) => {
            let active: Option<bool> = row.try_get("", "is_active")?;
            if active != Some(true) {
                return Err(Error::Unauthenticated(USER_INACTIVE));
            }
            let role: Option<String> = row.try_get("", "role")?;
            stored(&role.ok_or(Error::Unauthenticated(NO_MEMBERSHIP))?)?
        }
    };
    let scope: String = row.try_get("", "scope")?;
    Ok(Some(AuthContext {
        team_id: TeamId(row.try_get("", "team_id")?),
        user_id: user_id.map(UserId),
        key_id: None,
        read_only: !role.allows(Permission::ManageChatbots),
        role,
        oauth: Some(Grant {
            app_id: row.try_get("", "app_id")?,
            scopes: Scopes::parse(&scope)?,
            machine: user_id.is_none(),
        }),
    }))
}

/// Whether a grant carries a scope (API keys and cookies carry every scope).
pub fn allows(grant: Option<&Grant>, scope: Scope) -> bool {
    grant.is_none_or(|g| g.scopes.contains(scope))
}
