//! Daily usage rollups: what the console's usage page sums instead of
//! scanning a team's messages, sessions and usage records.
//!
//! - `usage_days`, per (team, UTC day, chatbot row, model): human and AI
//!   messages and sessions started (on the rows with model `''`), tokens and
//!   cost (on the rows of their model; `chatbot_id` 0 is spend no chatbot
//!   made).
//! - `usage_active`, per (team, UTC day, chatbot row, participant): who wrote
//!   a human message, so distinct participants per day and over a range are
//!   counted exactly.
//!
//! The definitions are the usage page's (`domain::usage`): a session still in
//! `setup` counts nowhere, neither as started nor with its messages; when it
//! leaves setup it counts on the day it was created and its messages on the
//! days they were written. The domain keeps the rows in the write path (one
//! or two statements before a transaction commits); the SQL they share with
//! the migration that fills them from existing rows, and with a recount, is
//! here, so the three cannot drift apart.

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

/// The UTC day of `alias.created_at` as `YYYY-MM-DD` text on both backends
/// (SQLite stores RFC 3339 text with an offset, which `date()` reads).
pub fn day_of(backend: DbBackend, alias: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("CAST(CAST({alias}.created_at AT TIME ZONE 'UTC' AS DATE) AS TEXT)")
        }
        _ => format!("date({alias}.created_at)"),
    }
}

/// The conflict clause every write to `usage_days` ends with: counts add up,
/// so concurrent writers on PostgreSQL never overwrite each other.
pub const ADD_ON_CONFLICT: &str = "ON CONFLICT (team_id, day, chatbot_id, model) DO UPDATE SET \
     messages = usage_days.messages + excluded.messages, \
     sessions = usage_days.sessions + excluded.sessions, \
     tokens = usage_days.tokens + excluded.tokens, \
     cost_e8 = usage_days.cost_e8 + excluded.cost_e8";

/// The `usage_days` columns, in the order every select below gives them.
pub const DAY_COLUMNS: &str =
    "team_id, day, chatbot_id, model, messages, sessions, tokens, cost_e8";

/// Which rows a `usage_days` upsert counts: SQL conditions over `m`
/// (messages) with `s` (their sessions), over `s` (sessions), and over `u`
/// (usage records); `None` counts none of that kind. `spend` adds that many
/// rows of parameters (team, day, chatbot row, model, tokens, cost: six
/// values each, bound by the caller in that order).
#[derive(Debug, Clone, Copy, Default)]
pub struct Spans<'a> {
    pub messages: Option<&'a str>,
    pub sessions: Option<&'a str>,
    pub records: Option<&'a str>,
    pub spend: usize,
}

/// The `usage_days` rows (in [`DAY_COLUMNS`] order, one per key, in key
/// order so concurrent upserts lock rows in one order) that the rows in
/// `spans` add; `None` when `spans` names none.
pub fn days_select(backend: DbBackend, spans: &Spans<'_>) -> Option<String> {
    // Every part names its columns: whichever comes first names the union's.
    let mut parts = Vec::new();
    if let Some(filter) = spans.messages {
        let day = day_of(backend, "m");
        parts.push(format!(
            "SELECT m.team_id AS team_id, {day} AS day, s.chatbot_id AS chatbot_id, '' AS model, \
             COUNT(*) AS messages, 0 AS sessions, 0 AS tokens, 0 AS cost_e8 \
             FROM messages m JOIN sessions s ON s.id = m.session_id \
             WHERE m.role IN ('human', 'ai') AND s.status <> 'setup' AND ({filter}) \
             GROUP BY m.team_id, {day}, s.chatbot_id"
        ));
    }
    if let Some(filter) = spans.sessions {
        let day = day_of(backend, "s");
        parts.push(format!(
            "SELECT s.team_id AS team_id, {day} AS day, s.chatbot_id AS chatbot_id, '' AS model, \
             0 AS messages, COUNT(*) AS sessions, 0 AS tokens, 0 AS cost_e8 FROM sessions s \
             WHERE s.status <> 'setup' AND ({filter}) GROUP BY s.team_id, {day}, s.chatbot_id"
        ));
    }
    if let Some(filter) = spans.records {
        let day = day_of(backend, "u");
        parts.push(format!(
            "SELECT u.team_id AS team_id, {day} AS day, COALESCE(u.chatbot_id, 0) AS chatbot_id, \
             u.model_name AS model, 0 AS messages, 0 AS sessions, SUM(u.quantity) AS tokens, \
             SUM(u.cost_e8) AS cost_e8 FROM usage_records u WHERE ({filter}) \
             GROUP BY u.team_id, {day}, COALESCE(u.chatbot_id, 0), u.model_name"
        ));
    }
    // Typed casts: PostgreSQL infers no type for a bare parameter in a UNION.
    let param = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    };
    for row in 0..spans.spend {
        let p = |i: usize| param(row * 6 + i + 1);
        parts.push(format!(
            "SELECT CAST({} AS BIGINT) AS team_id, CAST({} AS TEXT) AS day, \
             CAST({} AS BIGINT) AS chatbot_id, CAST({} AS TEXT) AS model, 0 AS messages, \
             0 AS sessions, CAST({} AS BIGINT) AS tokens, CAST({} AS BIGINT) AS cost_e8",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5)
        ));
    }
    if parts.is_empty() {
        return None;
    }
    // The derived table's WHERE also settles SQLite's reading of the upsert's
    // `ON` as a join constraint (sqlite.org/lang_upsert.html); the casts keep
    // PostgreSQL's numeric sums bigint.
    Some(format!(
        "SELECT team_id, day, chatbot_id, model, CAST(SUM(messages) AS BIGINT), \
         CAST(SUM(sessions) AS BIGINT), CAST(SUM(tokens) AS BIGINT), CAST(SUM(cost_e8) AS BIGINT) \
         FROM ({}) x WHERE TRUE GROUP BY team_id, day, chatbot_id, model \
         ORDER BY team_id, day, chatbot_id, model",
        parts.join(" UNION ALL ")
    ))
}

/// Integer ids as an SQL list (`1, 2, 3`): safe to format into a statement.
pub fn in_list(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 8);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&id.to_string());
    }
    out
}

/// Records, as active on their day, the participants of counted sessions who
/// wrote the human messages matching `filter` (over `m` and `s`).
pub fn active_insert(backend: DbBackend, filter: &str) -> String {
    let day = day_of(backend, "m");
    format!(
        "INSERT INTO usage_active (team_id, day, chatbot_id, participant_id) \
         SELECT DISTINCT m.team_id, {day}, s.chatbot_id, s.participant_id \
         FROM messages m JOIN sessions s ON s.id = m.session_id \
         WHERE m.role = 'human' AND s.status <> 'setup' AND ({filter}) \
         ON CONFLICT DO NOTHING"
    )
}

/// Rebuilds the rollups of one team (all teams with `None`) from the rows
/// they summarise, in one transaction of the caller's: what the migration
/// runs on existing data, and what a test compares the write path against.
pub async fn recount(db: &impl ConnectionTrait, team: Option<i64>) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let of_team = |col: &str| team.map_or_else(|| "TRUE".to_string(), |t| format!("{col} = {t}"));
    for table in ["usage_days", "usage_active"] {
        let filter = of_team("team_id");
        db.execute_unprepared(&format!("DELETE FROM {table} WHERE {filter}"))
            .await?;
    }
    let (messages, sessions, records) = (
        of_team("m.team_id"),
        of_team("s.team_id"),
        of_team("u.team_id"),
    );
    let spans = Spans {
        messages: Some(&messages),
        sessions: Some(&sessions),
        records: Some(&records),
        spend: 0,
    };
    if let Some(select) = days_select(backend, &spans) {
        db.execute_unprepared(&format!(
            "INSERT INTO usage_days ({DAY_COLUMNS}) {select} {ADD_ON_CONFLICT}"
        ))
        .await?;
    }
    db.execute_unprepared(&active_insert(backend, &of_team("m.team_id")))
        .await?;
    Ok(())
}
