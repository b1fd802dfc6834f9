//! The unique keys that callers turn into answers (a conflict, or "someone
//! else created it first"), by name. PostgreSQL reports the constraint's name;
//! SQLite reports the table and columns, so each key knows both.

use sea_orm::{DbErr, SqlErr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqueKey {
    /// The constraint or unique index name on PostgreSQL.
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static [&'static str],
}

impl UniqueKey {
    /// Whether `e` is a violation of this key (on either backend).
    pub fn violated_by(&self, e: &DbErr) -> bool {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) => self.named_in(&msg),
            _ => false,
        }
    }

    /// Whether a unique-violation message (either backend's wording) names this key.
    fn named_in(&self, msg: &str) -> bool {
        if msg.contains(&format!("\"{}\"", self.name)) {
            return true;
        }
        // SQLite: "UNIQUE constraint failed: table.a, table.b"
        let Some((_, cols)) = msg.split_once("UNIQUE constraint failed: ") else {
            return false;
        };
        let listed: Vec<&str> = cols.trim().split(", ").map(str::trim).collect();
        listed.len() == self.columns.len()
            && self.columns.iter().zip(&listed).all(|(c, l)| {
                l.strip_prefix(self.table)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|r| r == *c)
            })
    }
}

macro_rules! keys {
    ($($(#[$doc:meta])* $const:ident = $name:literal on $table:literal ($($col:literal),+);)+) => {
        $($(#[$doc])* pub const $const: UniqueKey = UniqueKey { name: $name, table: $table, columns: &[$($col),+] };)+
    };
}

keys! {
    TEAM_SLUG = "teams_slug_key" on "teams" ("slug");
    USER_USERNAME = "users_username_key" on "users" ("username");
    API_KEY_PREFIX = "api_keys_prefix_key" on "api_keys" ("prefix");
    SETTING_KEY = "settings_pkey" on "settings" ("key");
    PROVIDER_NAME = "providers_team_name_key" on "providers" ("team_id", "name");
    MESSAGING_PROVIDER_NAME = "messaging_providers_team_name_key" on "messaging_providers" ("team_id", "name");
    ACTION_NAME = "custom_actions_team_name_key" on "custom_actions" ("team_id", "name");
    PARTICIPANT_IDENTITY = "participants_team_platform_identifier_key" on "participants" ("team_id", "platform", "identifier");
    /// One live team-wide API channel per team (a partial unique index).
    API_CHANNEL = "channels_one_api_per_team" on "channels" ("team_id");
    TAG_NAME = "tags_team_name_kind_key" on "tags" ("team_id", "name", "is_system", "category");
    JOB_IDEMPOTENCY_KEY = "jobs_idempotency_key_key" on "jobs" ("idempotency_key");
    TIMEOUT_TIMER = "timeout_timers_session_trigger_key" on "timeout_timers" ("session_id", "chatbot_row", "trigger_index");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_on_either_backend() {
        let sqlite = "UNIQUE constraint failed: providers.team_id, providers.name";
        let pg = "duplicate key value violates unique constraint \"providers_team_name_key\"";
        for msg in [sqlite, pg] {
            assert!(PROVIDER_NAME.named_in(msg), "{msg}");
            assert!(!TEAM_SLUG.named_in(msg), "{msg}");
        }
        // Same columns in another table, or a prefix of the columns, is another key.
        assert!(!PROVIDER_NAME.named_in("UNIQUE constraint failed: tags.team_id, tags.name"));
        assert!(!PROVIDER_NAME.named_in("UNIQUE constraint failed: providers.team_id"));
        assert!(API_CHANNEL.named_in("UNIQUE constraint failed: channels.team_id"));
    }
}
