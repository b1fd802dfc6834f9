//! Who is looking at a console page: a signed-in person who is a member of
//! the team the path names (anyone else gets the sign-in page, or a 404 for
//! another team's pages), with their role.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use domain::signins::{self, SignIn};
use domain::teams::{Permission, Role, Team};
use minijinja::{Value, context};

use api::AppState;
use api::auth::{SESSION_COOKIE, cookie};

use crate::error::PageError;

/// A signed-in person, whatever the page.
pub struct SignedIn {
    pub token: String,
    pub sign_in: SignIn,
}

impl axum::extract::OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, PageError> {
        match <SignedIn as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(s) => Ok(Some(s)),
            Err(PageError::SignedOut { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let signed_out = || PageError::SignedOut {
            next: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
        };
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(signed_out)?
            .to_string();
        let sign_in = signins::find(&state.domain, &token)
            .await?
            .ok_or_else(signed_out)?;
        Ok(SignedIn { token, sign_in })
    }
}

/// The chatbot a page's path names (`{id}`): a malformed id is a 404 page.
pub struct BotId(pub uuid::Uuid);

impl FromRequestParts<AppState> for BotId {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| PageError::NotFound)?;
        params
            .iter()
            .find(|(k, _)| *k == "id")
            .and_then(|(_, v)| uuid::Uuid::parse_str(v).ok())
            .map(BotId)
            .ok_or(PageError::NotFound)
    }
}

/// A member of the path's team.
pub struct Member {
    pub sign_in: SignIn,
    pub team: Team,
    pub role: Role,
    pub email: String,
}

impl FromRequestParts<AppState> for Member {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let SignedIn { sign_in, .. } = SignedIn::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| PageError::NotFound)?;
        let slug = params
            .iter()
            .find(|(k, _)| *k == "team")
            .map(|(_, v)| v.to_string())
            .ok_or(PageError::NotFound)?;
        let team = domain::teams::by_slug(&state.domain, &slug).await?;
        // Another team's pages do not exist for this person.
        let role = domain::users::role_in(&state.domain, sign_in.user_id, team.id)
            .await?
            .ok_or(PageError::NotFound)?;
        signins::set_team(&state.domain, &sign_in, team.id).await?;
        let email = domain::users::email(&state.domain, sign_in.user_id).await?;
        Ok(Member {
            sign_in,
            team,
            role,
            email,
        })
    }
}

impl Member {
    /// Refuses (a 403 page) what the role does not allow.
    pub fn require(&self, p: Permission) -> Result<(), PageError> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(PageError::Forbidden)
        }
    }

    /// Refuses a form that does not carry this sign-in's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if signins::csrf_matches(&self.sign_in, sent) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    /// A `303` to one of the team's pages (`rest` after `/a/{team}/`).
    pub fn go(&self, rest: &str) -> axum::response::Response {
        crate::error::redirect(&format!("/a/{}/{rest}", self.team.slug))
    }

    /// An action: the role's permission first, then the form's token.
    pub fn may(&self, p: Permission, csrf: &str) -> Result<(), PageError> {
        self.require(p)?;
        self.check_csrf(csrf)
    }

    /// What every page's frame shows: the team, the person, what they may do.
    pub fn frame(&self, section: &str) -> Value {
        context! {
            team => context! { slug => self.team.slug, name => self.team.name },
            me => context! {
                email => self.email,
                role => self.role.label(),
                manages_chatbots => self.role.allows(Permission::ManageChatbots),
                manages_team => self.role.allows(Permission::ManageTeam),
            },
            csrf => self.sign_in.csrf_token,
            section => section,
        }
    }
}
