//! OAuth2 for API v1 (RFC 6749 with PKCE, RFC 7636; revocation, RFC 7009;
//! introspection, RFC 7662): a team's applications, the authorization codes
//! of the consent page, and opaque access and refresh tokens.
//!
//! The protocol is written here over RustCrypto primitives (SHA-256 for
//! PKCE and for storing secrets, constant-time comparison, the OS random
//! source for every secret) rather than on a server framework: the one
//! maintained Rust candidate, `oxide-auth`, keeps grants behind synchronous
//! storage traits, has no refresh-token reuse detection, and has no place
//! for what this provider needs beside the protocol (applications pinned to a
//! team, a machine application's chatbot allowlist, team membership checked
//! at every step).
//!
//! Choices where the original leaves room: access tokens last 36,000 s (the
//! original's library default); refresh tokens 90 days, rotated on every use;
//! codes 60 s, single use. Presenting a used code or a rotated refresh token
//! revokes every token of its grant ("family"), as RFC 6819 §5.2.2.3 advises.

pub mod apps;
pub mod chat_start;
pub mod codes;
pub mod tokens;

use crate::text_enum::text_enum;

pub use apps::{App, NewApp};

pub const ACCESS_LIFETIME: chrono::Duration = chrono::Duration::seconds(36_000);
pub const REFRESH_LIFETIME: chrono::Duration = chrono::Duration::days(90);
pub const CODE_LIFETIME: chrono::Duration = chrono::Duration::seconds(60);

text_enum! {
    /// The contract's OAuth2 scopes.
    pub enum Scope {
        ChatbotsRead = "chatbots:read",
        ChatbotsInteract = "chatbots:interact",
        ChatStart = "chat:start",
        SessionsRead = "sessions:read",
        SessionsWrite = "sessions:write",
        FilesRead = "files:read",
        ParticipantsRead = "participants:read",
        ParticipantsWrite = "participants:write",
        UsageRead = "usage:read",
    }
}

impl Scope {
    /// What the scope lets an application do, as the consent page says it
    /// (the contract's descriptions).
    pub fn description(self) -> &'static str {
        match self {
            Scope::ChatbotsRead => "List and Retrieve Chatbot Data",
            Scope::ChatbotsInteract => "Converse with a Chatbot and trigger bot messages",
            Scope::ChatStart => "Start a chat session",
            Scope::SessionsRead => "List and Read Sessions",
            Scope::SessionsWrite => "Manage Sessions",
            Scope::FilesRead => "Download file content",
            Scope::ParticipantsRead => "Read Participant Data",
            Scope::ParticipantsWrite => "Update Participant Data",
            Scope::UsageRead => "Read usage and activity data",
        }
    }

    fn bit(self) -> u16 {
        let i = Scope::ALL.iter().position(|s| *s == self).unwrap_or(0);
        1 << i
    }
}

/// A set of scopes; its text is the scopes space-separated in the
/// contract's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u16);

impl Scopes {
    pub fn all() -> Self {
        Scope::ALL.iter().copied().collect()
    }

    pub fn only(s: Scope) -> Self {
        Scopes(s.bit())
    }

    /// The scopes of a `scope` parameter (RFC 6749 §3.3: space-delimited);
    /// an unknown scope names itself in the error.
    pub fn parse(text: &str) -> Result<Self, OAuthFailure> {
        text.split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| {
                Scope::parse(s).ok_or_else(|| {
                    OAuthFailure::new(ErrorCode::InvalidScope, format!("unknown scope {s:?}"))
                })
            })
            .collect()
    }

    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn is_subset_of(self, other: Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
            first = false;
        }
        Ok(())
    }
}

text_enum! {
    /// What an application is: a user-facing one (authorization code, acts
    /// for the person who consented) or a machine (client credentials).
    pub enum AppKind {
        User = "authorization-code",
        Machine = "client-credentials",
    }
}

text_enum! {
    /// RFC 6749 §4.1.2.1 and §5.2 error codes (and RFC 7009's).
    pub enum ErrorCode {
        InvalidRequest = "invalid_request",
        InvalidClient = "invalid_client",
        InvalidGrant = "invalid_grant",
        UnauthorizedClient = "unauthorized_client",
        UnsupportedGrantType = "unsupported_grant_type",
        InvalidScope = "invalid_scope",
        AccessDenied = "access_denied",
        UnsupportedResponseType = "unsupported_response_type",
        UnsupportedTokenType = "unsupported_token_type",
        /// `prompt=none` without a sign-in (OpenID Connect's code).
        LoginRequired = "login_required",
        /// `prompt=none` when the person would have to consent.
        ConsentRequired = "consent_required",
    }
}

/// A refusal of the OAuth2 protocol, answered as RFC 6749 §5.2 says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthFailure {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthFailure {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthFailure {
            code,
            description: description.into(),
        }
    }
}

pub(crate) fn failure(code: ErrorCode, description: impl Into<String>) -> crate::Error {
    crate::Error::OAuth(OAuthFailure::new(code, description))
}

/// 40 random letters and digits: codes, tokens, client ids and secrets. No
/// `.`, so an OAuth token can never be mistaken for an API key.
pub(crate) fn new_secret() -> String {
    crate::keys::random_alnum(40)
}

pub(crate) fn hash(secret: &str) -> String {
    crate::keys::hash_key(secret)
}

/// The OAuth side of an API caller: which application, with which scopes.
#[derive(Debug, Clone)]
pub struct Grant {
    pub app_id: i64,
    pub scopes: Scopes,
    /// A client-credentials token: no user behind it.
    pub machine: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_in_the_contracts_order() {
        let s = Scopes::parse("sessions:read  chatbots:read").expect("valid");
        assert_eq!(s.to_string(), "chatbots:read sessions:read");
        assert!(s.contains(Scope::SessionsRead));
        assert!(!s.contains(Scope::ChatStart));
        assert!(Scopes::only(Scope::ChatbotsRead).is_subset_of(s));
        assert!(!Scopes::all().is_subset_of(s));
        assert!(Scopes::parse("").expect("empty").is_empty());
        let e = Scopes::parse("chatbots:read openid").expect_err("unknown");
        assert_eq!(e.code, ErrorCode::InvalidScope);
        assert_eq!(Scopes::all().iter().count(), 9);
    }
}
