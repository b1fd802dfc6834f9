//! The authorization endpoint's half of the code flow: checking an
//! authorization request (RFC 6749 §4.1.1, PKCE RFC 7636 §4.3) and granting
//! a single-use code once the signed-in person consents.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ActiveModelTrait, Set};
use sha2::{Digest, Sha256};
use store::entity::oauth_code;
use subtle::ConstantTimeEq;

use super::{App, AppKind, CODE_LIFETIME, ErrorCode, OAuthFailure, Scopes, hash, new_secret};
use crate::Domain;
use crate::conn::Reads;
use crate::ids::UserId;
use crate::text_enum::text_enum;

text_enum! {
    /// How a PKCE code challenge was derived from its verifier.
    pub enum ChallengeMethod {
        S256 = "S256",
        Plain = "plain",
    }
}

/// The query of `GET /o/authorize/`, as given.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
}

/// A checked authorization request, ready for the consent page.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub app: App,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub challenge: Option<(String, ChallengeMethod)>,
}

/// Why an authorization request is refused: before the redirect URI is
/// known good the person is told on a page (RFC 6749 §4.1.2.1 forbids
/// redirecting); after, the client is told at its redirect URI.
#[derive(Debug, Clone)]
pub enum Refusal {
    Shown(String),
    Redirected {
        redirect_uri: String,
        failure: OAuthFailure,
        state: Option<String>,
    },
}

impl Refusal {
    /// The refusal of an otherwise valid request (access denied, consent
    /// or login required), sent to the client.
    pub fn to_client(req: &AuthorizeRequest, code: ErrorCode, description: &str) -> Self {
        Refusal::Redirected {
            redirect_uri: req.redirect_uri.clone(),
            failure: OAuthFailure::new(code, description),
            state: req.state.clone(),
        }
    }
}

fn valid_pkce_text(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks an authorization request.
pub async fn check(
    db: &impl Reads,
    p: &AuthorizeParams,
) -> std::result::Result<AuthorizeRequest, RefusalOr> {
    let client_id = p.client_id.as_deref().unwrap_or("").trim();
    if client_id.is_empty() {
        return Err(Refusal::Shown("The request names no application (client_id).".into()).into());
    }
    let app = super::apps::by_client_id(db, client_id)
        .await?
        .ok_or_else(|| Refusal::Shown("No application has this client_id.".into()))?;
    if app.kind != AppKind::User {
        return Err(Refusal::Shown(
            "This application is a machine (client credentials); nobody signs in to it.".into(),
        )
        .into());
    }
    let redirect_uri = match p.redirect_uri.as_deref() {
        Some(u) if app.redirect_uris.iter().any(|r| r == u) => u.to_string(),
        Some(_) => {
            return Err(Refusal::Shown(
                "The redirect URI is not one registered for this application.".into(),
            )
            .into());
        }
        None => match app.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(Refusal::Shown(
                    "The request names no redirect URI and the application has several.".into(),
                )
                .into());
            }
        },
    };
    let refuse = |code, description: &str| -> RefusalOr {
        Refusal::Redirected {
            redirect_uri: redirect_uri.clone(),
            failure: OAuthFailure::new(code, description),
            state: p.state.clone(),
        }
        .into()
    };
    if p.response_type.as_deref() != Some("code") {
        return Err(refuse(
            ErrorCode::UnsupportedResponseType,
            "response_type must be code",
        ));
    }
    let scopes = match p.scope.as_deref() {
        None => app.grantable(),
        Some(s) => match Scopes::parse(s) {
            Ok(s) if s.is_empty() => app.grantable(),
            Ok(s) => s,
            Err(f) => return Err(refuse(f.code, &f.description)),
        },
    };
    if !scopes.is_subset_of(app.grantable()) {
        return Err(refuse(
            ErrorCode::InvalidScope,
            "scope not allowed for this application",
        ));
    }
    let challenge = match p.code_challenge.as_deref() {
        None | Some("") => None,
        Some(c) => {
            let method = match p.code_challenge_method.as_deref() {
                None | Some("") => ChallengeMethod::Plain,
                Some(m) => ChallengeMethod::parse(m).ok_or_else(|| {
                    refuse(ErrorCode::InvalidRequest, "unknown code_challenge_method")
                })?,
            };
            if !valid_pkce_text(c) {
                return Err(refuse(
                    ErrorCode::InvalidRequest,
                    "malformed code_challenge",
                ));
            }
            Some((c.to_string(), method))
        }
    };
    if app.pkce_required {
        match &challenge {
            None => {
                return Err(refuse(
                    ErrorCode::InvalidRequest,
                    "code_challenge required (PKCE, S256)",
                ));
            }
            Some((_, ChallengeMethod::Plain)) => {
                return Err(refuse(
                    ErrorCode::InvalidRequest,
                    "code_challenge_method must be S256",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(AuthorizeRequest {
        app,
        redirect_uri,
        scopes,
        state: p.state.clone(),
        challenge,
    })
}

/// A refusal, or a failure of the server itself.
#[derive(Debug)]
pub enum RefusalOr {
    Refused(Refusal),
    Failed(crate::Error),
}

impl From<Refusal> for RefusalOr {
    fn from(r: Refusal) -> Self {
        RefusalOr::Refused(r)
    }
}

impl From<crate::Error> for RefusalOr {
    fn from(e: crate::Error) -> Self {
        RefusalOr::Failed(e)
    }
}

/// Grants a code for a consented request; the person must be a member of
/// the application's team (else the client hears `access_denied`).
pub async fn grant(
    domain: &Domain,
    req: &AuthorizeRequest,
    user: UserId,
) -> std::result::Result<String, RefusalOr> {
    if crate::users::role_in(&domain.db.write, user, req.app.team_id)
        .await?
        .is_none()
    {
        return Err(Refusal::to_client(
            req,
            ErrorCode::AccessDenied,
            "you are not a member of this application's team",
        )
        .into());
    }
    let code = new_secret();
    let now = store::now();
    oauth_code::ActiveModel {
        team_id: Set(req.app.team_id.0),
        code_hash: Set(hash(&code)),
        app_id: Set(req.app.id),
        user_id: Set(user.0),
        scope: Set(req.scopes.to_string()),
        redirect_uri: Set(req.redirect_uri.clone()),
        code_challenge: Set(req.challenge.as_ref().map(|c| c.0.clone())),
        challenge_method: Set(req.challenge.as_ref().map(|c| c.1.as_str().to_string())),
        family: Set(uuid::Uuid::new_v4().to_string()),
        created_at: Set(now),
        expires_at: Set(now + CODE_LIFETIME),
        ..Default::default()
    }
    .insert(&domain.db.write)
    .await
    .map_err(crate::Error::from)?;
    Ok(code)
}

/// Whether a code verifier answers a stored challenge (RFC 7636 §4.6).
pub fn verifier_matches(challenge: &str, method: ChallengeMethod, verifier: &str) -> bool {
    if !valid_pkce_text(verifier) {
        return false;
    }
    let derived = match method {
        ChallengeMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        ChallengeMethod::Plain => verifier.to_string(),
    };
    derived.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_verifier_matches_its_challenge() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(challenge, ChallengeMethod::S256, verifier));
        assert!(!verifier_matches(
            challenge,
            ChallengeMethod::Plain,
            verifier
        ));
        assert!(!verifier_matches(challenge, ChallengeMethod::S256, "short"));
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert!(!verifier_matches(challenge, ChallengeMethod::S256, other));
        assert!(verifier_matches(verifier, ChallengeMethod::Plain, verifier));
    }
}
