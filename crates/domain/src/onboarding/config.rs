//! A chatbot configuration's `seed_message`, `consent` and `allowlist`, as
//! read and checked on save (the flow that uses them is the parent module's).

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// The original's answer to a participant the allowlist does not name.
pub const NOT_ALLOWED: &str = "Sorry, you are not allowed to chat to this bot";

/// Replies that give consent when a chatbot lists none of its own.
pub const DEFAULT_ACCEPT: &[&str] = &["1", "yes", "y", "agree", "i agree"];

/// The keys of a chatbot configuration this module reads.
pub const CONFIG_KEYS: &[&str] = &["seed_message", "consent", "allowlist"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Onboarding {
    pub seed: Option<Seed>,
    pub consent: Option<Consent>,
    pub allowlist: Option<Allowlist>,
}

/// A session's first bot message.
#[derive(Debug, Clone, PartialEq)]
pub enum Seed {
    /// Said as written.
    Text(String),
    /// An instruction the chatbot's LLM writes the message from.
    Prompt(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedSpec {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub text: String,
    #[serde(default)]
    pub confirmation: Option<String>,
    /// The replies that give consent; [`DEFAULT_ACCEPT`] when absent.
    #[serde(default)]
    pub accept: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowlist {
    pub identifiers: Vec<String>,
    #[serde(default)]
    pub message: Option<String>,
}

pub(super) fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// The onboarding settings of a configuration, checked; the error names the setting.
pub fn parse(config: &Value) -> std::result::Result<Onboarding, String> {
    fn read<T: serde::de::DeserializeOwned>(
        config: &Value,
        key: &str,
    ) -> std::result::Result<Option<T>, String> {
        match config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_path_to_error::deserialize(v.clone())
                .map(Some)
                .map_err(|e| format!("{key}: {e}")),
        }
    }
    let seed = match read::<SeedSpec>(config, "seed_message")? {
        None => None,
        Some(SeedSpec {
            text: Some(t),
            prompt: None,
        }) if !blank(&t) => Some(Seed::Text(t)),
        Some(SeedSpec {
            text: None,
            prompt: Some(p),
        }) if !blank(&p) => Some(Seed::Prompt(p)),
        Some(SeedSpec {
            text: Some(_),
            prompt: Some(_),
        }) => return Err("seed_message: give text or prompt, not both".into()),
        Some(_) => return Err("seed_message: text (or prompt) must not be blank".into()),
    };
    let consent = read::<Consent>(config, "consent")?;
    if let Some(c) = &consent {
        if blank(&c.text) {
            return Err("consent.text: must not be blank".into());
        }
        if c.accept
            .as_ref()
            .is_some_and(|a| a.iter().all(|r| blank(r)))
        {
            return Err("consent.accept: list at least one reply".into());
        }
    }
    let allowlist = read::<Allowlist>(config, "allowlist")?;
    if let Some(a) = &allowlist {
        if let Some(i) = a.identifiers.iter().position(|i| blank(i)) {
            return Err(format!("allowlist.identifiers[{i}]: must not be blank"));
        }
        if a.message.as_deref().is_some_and(blank) {
            return Err("allowlist.message: must not be blank".into());
        }
    }
    Ok(Onboarding {
        seed,
        consent,
        allowlist,
    })
}

/// Refuses a configuration whose onboarding settings do not parse.
pub fn validate(config: &Value) -> Result<()> {
    parse(config)
        .map(|_| ())
        .map_err(|e| Error::field("config", e))
}

/// The settings of a stored configuration (checked when it was saved; a
/// setting that no longer parses is left out and logged).
pub fn of_config(config: &Value) -> Onboarding {
    parse(config).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "a stored chatbot configuration's onboarding settings do not parse");
        Onboarding::default()
    })
}

impl Consent {
    /// What the bot says to ask for consent.
    pub fn prompt(&self) -> String {
        match self.confirmation.as_deref().filter(|c| !blank(c)) {
            Some(c) => format!("{}\n\n{c}", self.text),
            None => self.text.clone(),
        }
    }

    /// Whether a reply gives consent.
    pub fn accepts(&self, reply: &str) -> bool {
        let norm = |s: &str| s.trim().trim_end_matches(['.', '!']).trim().to_lowercase();
        let reply = norm(reply);
        match &self.accept {
            Some(list) => list.iter().any(|a| norm(a) == reply),
            None => DEFAULT_ACCEPT.contains(&reply.as_str()),
        }
    }
}

/// An identifier as the allowlist compares it.
fn comparable(identifier: &str) -> String {
    let t = identifier.trim();
    let phone = t.starts_with('+') || t.starts_with(|c: char| c.is_ascii_digit());
    if phone
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
    {
        t.chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    } else {
        t.to_lowercase()
    }
}

impl Allowlist {
    pub fn lists(&self, identifier: &str) -> bool {
        let want = comparable(identifier);
        self.identifiers.iter().any(|i| comparable(i) == want)
    }

    pub fn refusal(&self) -> &str {
        self.message.as_deref().unwrap_or(NOT_ALLOWED)
    }
}
