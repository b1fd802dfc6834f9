//! Direct database access beside the server: look-ups, bulk seeding, the
//! physical floor of a turn's writes, and scratch PostgreSQL databases.
//!
//! SQL is written once with `?` placeholders and numbered for PostgreSQL;
//! UUIDs are bound as `uuid::Uuid` (16-byte blobs on SQLite, as the server
//! stores them) and timestamps as `DateTime<Utc>` (sqlx encodes them exactly as
//! the server's SeaORM binds do).

use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use uuid::Uuid;

use crate::http::{Op, OpFuture};

#[derive(Debug, Clone)]
pub enum Val {
    I64(i64),
    Text(String),
    Uuid(Uuid),
    Time(DateTime<Utc>),
}

macro_rules! bind_all {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                Val::I64(x) => q.bind(*x),
                Val::Text(s) => q.bind(s.clone()),
                Val::Uuid(u) => q.bind(*u),
                Val::Time(t) => q.bind(*t),
            };
        }
        q
    }};
}

/// One dedicated connection to the server's database.
pub enum Conn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// Numbers `?` placeholders as `$1, $2, …` (our SQL has no `?` in literals).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

impl Conn {
    /// The server's SQLite file with the server's own pragmas.
    pub async fn sqlite(file: &Path) -> Result<Conn> {
        let c = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .connect()
            .await
            .with_context(|| format!("cannot open {}", file.display()))?;
        Ok(Conn::Sqlite(c))
    }

    pub async fn postgres(url: &str) -> Result<Conn> {
        let c = PgConnectOptions::from_str(url)?
            .connect()
            .await
            .context("cannot connect to PostgreSQL")?;
        Ok(Conn::Pg(c))
    }

    pub fn is_pg(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }

    /// An empty JSON object literal for a `json_binary` column.
    pub fn empty_json(&self) -> &'static str {
        if self.is_pg() { "'{}'::jsonb" } else { "'{}'" }
    }

    pub async fn exec(&mut self, sql: &str, vals: &[Val]) -> Result<u64> {
        Ok(match self {
            Conn::Sqlite(c) => bind_all!(sqlx::query(AssertSqlSafe(sql.to_string())), vals)
                .execute(&mut *c)
                .await
                .with_context(|| format!("SQL failed: {}", short(sql)))?
                .rows_affected(),
            Conn::Pg(c) => bind_all!(sqlx::query(AssertSqlSafe(numbered(sql))), vals)
                .execute(&mut *c)
                .await
                .with_context(|| format!("SQL failed: {}", short(sql)))?
                .rows_affected(),
        })
    }

    /// Every `i64` the statement returns in its first column.
    pub async fn i64s(&mut self, sql: &str, vals: &[Val]) -> Result<Vec<i64>> {
        match self {
            Conn::Sqlite(c) => {
                bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.to_string())), vals)
                    .fetch_all(&mut *c)
                    .await
            }
            Conn::Pg(c) => {
                bind_all!(sqlx::query_scalar(AssertSqlSafe(numbered(sql))), vals)
                    .fetch_all(&mut *c)
                    .await
            }
        }
        .with_context(|| format!("SQL failed: {}", short(sql)))
    }

    pub async fn i64(&mut self, sql: &str, vals: &[Val]) -> Result<i64> {
        self.i64s(sql, vals)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no row: {}", short(sql)))
    }

    pub async fn text(&mut self, sql: &str, vals: &[Val]) -> Result<String> {
        match self {
            Conn::Sqlite(c) => {
                bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.to_string())), vals)
                    .fetch_one(&mut *c)
                    .await
            }
            Conn::Pg(c) => {
                bind_all!(sqlx::query_scalar(AssertSqlSafe(numbered(sql))), vals)
                    .fetch_one(&mut *c)
                    .await
            }
        }
        .with_context(|| format!("SQL failed: {}", short(sql)))
    }

    pub async fn close(self) {
        let _ = match self {
            Conn::Sqlite(c) => c.close().await,
            Conn::Pg(c) => c.close().await,
        };
    }
}

fn short(sql: &str) -> String {
    sql.chars().take(120).collect()
}

/// Ids of the demo team as the server created them.
#[derive(Debug, Clone)]
pub struct Demo {
    pub team_id: i64,
    pub chatbot_row_id: i64,
    pub user_email: String,
}

pub async fn demo(conn: &mut Conn, chatbot: Uuid, api_key: &str) -> Result<Demo> {
    let team_id = conn
        .i64("SELECT id FROM teams WHERE slug = 'demo'", &[])
        .await?;
    let chatbot_row_id = conn
        .i64(
            "SELECT id FROM chatbots WHERE public_id = ?",
            &[Val::Uuid(chatbot)],
        )
        .await?;
    let prefix = api_key.split('.').next().unwrap_or_default().to_string();
    let user_email = conn
        .text(
            "SELECT u.email FROM users u JOIN api_keys k ON k.user_id = u.id WHERE k.prefix = ?",
            &[Val::Text(prefix)],
        )
        .await?;
    Ok(Demo {
        team_id,
        chatbot_row_id,
        user_email,
    })
}

/// Rows per INSERT and rows per transaction while seeding.
const BATCH: usize = 1000;
const TXN_ROWS: usize = 50_000;

fn values_list(row: &str, n: usize) -> String {
    let mut s = String::with_capacity((row.len() + 2) * n);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(row);
    }
    s
}

/// How seeded sessions vary: spread over `span` up to an hour ago, over
/// chatbots, statuses and channels, so that each console filter selects a
/// share of them rather than all or none.
pub struct Mix {
    pub chatbots: Vec<i64>,
    pub span: chrono::Duration,
}

impl Mix {
    /// 5% pending review, 20% active, the rest complete.
    pub fn status(i: usize) -> &'static str {
        match i % 20 {
            0 => "pending-review",
            1..=4 => "active",
            _ => "complete",
        }
    }

    /// 10% telegram, 10% web, the rest api.
    pub fn platform(i: usize) -> &'static str {
        match i % 10 {
            3 => "telegram",
            5 => "web",
            _ => "api",
        }
    }
}

/// Seeds `sessions` sessions (one participant per ten sessions) for the
/// demo team as `mix` spreads them, newest `created_at` last, in multi-row
/// INSERTs and large transactions. Returns how long it took.
pub async fn seed_sessions(
    conn: &mut Conn,
    demo: &Demo,
    sessions: usize,
    mix: &Mix,
) -> Result<Duration> {
    anyhow::ensure!(!mix.chatbots.is_empty(), "no chatbot to seed sessions for");
    let t0 = Instant::now();
    if let Conn::Sqlite(_) = conn {
        // A large page cache only for this connection: the random UUID index
        // inserts otherwise thrash the default 2 MB cache.
        conn.exec("PRAGMA cache_size = -262144", &[]).await?;
    }
    let participants = sessions.div_ceil(10).max(1);
    let step_ms = (mix.span.num_milliseconds() / i64::try_from(sessions.max(1))?).max(1);
    let base = Utc::now()
        - chrono::Duration::hours(1)
        - chrono::Duration::milliseconds(step_ms * i64::try_from(sessions)?);
    let json = conn.empty_json();
    let team = demo.team_id;
    let part_row = format!("(?, {team}, 'api', ?, '', '', NULL, ?, ?)");
    let sess_row =
        format!("(?, {team}, ?, ?, NULL, ?, '{{}}', ?, 0, {json}, NULL, NULL, ?, ?, ?, ?)");
    let mut part_ids: Vec<i64> = Vec::with_capacity(participants);
    let mut in_txn = 0usize;
    conn.exec("BEGIN", &[]).await?;
    let mut done = 0usize;
    while done < participants {
        let n = BATCH.min(participants - done);
        let sql = format!(
            "INSERT INTO participants (public_id, team_id, platform, identifier, name, remote_id, \
             user_id, created_at, updated_at) VALUES {} RETURNING id",
            values_list(&part_row, n)
        );
        let mut vals = Vec::with_capacity(n * 4);
        for i in done..done + n {
            let at = base + chrono::Duration::milliseconds(step_ms * i64::try_from(i)?);
            vals.push(Val::Uuid(Uuid::new_v4()));
            vals.push(Val::Text(format!("bench-participant-{i}")));
            vals.push(Val::Time(at));
            vals.push(Val::Time(at));
        }
        part_ids.extend(conn.i64s(&sql, &vals).await?);
        done += n;
    }
    let mut done = 0usize;
    while done < sessions {
        let n = BATCH.min(sessions - done);
        let sql = format!(
            "INSERT INTO sessions (external_id, team_id, participant_id, chatbot_id, channel_id, \
             status, state, platform, version_number, metadata, ended_at, ended_by, \
             first_activity_at, last_activity_at, created_at, updated_at) VALUES {}",
            values_list(&sess_row, n)
        );
        let mut vals = Vec::with_capacity(n * 9);
        for i in done..done + n {
            let at = base + chrono::Duration::milliseconds(step_ms * i64::try_from(i)?);
            vals.push(Val::Text(Uuid::new_v4().to_string()));
            vals.push(Val::I64(part_ids[i % part_ids.len()]));
            // Runs of seven, so a chatbot's sessions are not one status or channel.
            let bot = mix.chatbots[(i / 7) % mix.chatbots.len()];
            vals.push(Val::I64(bot));
            vals.push(Val::Text(Mix::status(i).into()));
            vals.push(Val::Text(Mix::platform(i).into()));
            for _ in 0..4 {
                vals.push(Val::Time(at));
            }
        }
        conn.exec(&sql, &vals).await?;
        done += n;
        in_txn += n;
        if in_txn >= TXN_ROWS {
            conn.exec("COMMIT", &[]).await?;
            conn.exec("BEGIN", &[]).await?;
            in_txn = 0;
        }
    }
    conn.exec("COMMIT", &[]).await?;
    // The server counts sessions as it writes them (session_counts); these
    // went in by SQL, so they are counted here as the migration that made
    // the counters counts existing sessions.
    conn.exec("BEGIN", &[]).await?;
    conn.exec(
        &format!("DELETE FROM session_counts WHERE team_id = {team}"),
        &[],
    )
    .await?;
    conn.exec(
        &format!(
            "INSERT INTO session_counts (team_id, chatbot_id, status, platform, n) \
             SELECT team_id, chatbot_id, status, COALESCE(platform, ''), COUNT(*) FROM sessions \
             WHERE team_id = {team} GROUP BY team_id, chatbot_id, status, COALESCE(platform, '')"
        ),
        &[],
    )
    .await?;
    conn.exec("COMMIT", &[]).await?;
    if conn.is_pg() {
        // Autovacuum would analyze a table that grew this much within a minute;
        // do it now so the first point does not run on stale statistics.
        conn.exec("ANALYZE participants", &[]).await?;
        conn.exec("ANALYZE sessions", &[]).await?;
        conn.exec("ANALYZE session_counts", &[]).await?;
    }
    Ok(t0.elapsed())
}

/// Arms a timeout timer for every session of the demo team: all due in a
/// day but `due` of them, due a minute ago. Returns how many were armed.
pub async fn seed_timers(conn: &mut Conn, demo: &Demo, due: i64) -> Result<i64> {
    let now = Utc::now();
    let later = now + chrono::Duration::days(1);
    let past = now - chrono::Duration::minutes(1);
    let json = conn.empty_json();
    let team = demo.team_id;
    conn.exec(
        &format!(
            "INSERT INTO timeout_timers (team_id, session_id, chatbot_row, trigger_index, \
             reference_message_id, seconds, times, fired, action, next_at, created_at, updated_at) \
             SELECT {team}, id, chatbot_id, 0, 0, 86400, 1, 0, {json}, ?, ?, ? FROM sessions WHERE team_id = {team}"
        ),
        &[Val::Time(later), Val::Time(now), Val::Time(now)],
    )
    .await?;
    conn.exec(
        &format!(
            "UPDATE timeout_timers SET next_at = ? WHERE id IN \
             (SELECT id FROM timeout_timers ORDER BY id LIMIT {due})"
        ),
        &[Val::Time(past)],
    )
    .await?;
    if conn.is_pg() {
        conn.exec("ANALYZE timeout_timers", &[]).await?;
    }
    conn.i64("SELECT COUNT(*) FROM timeout_timers", &[]).await
}

/// The timeout scan's query (`domain::timeouts::tick`): the due timers, in
/// due order, through the index on `next_at`.
pub const TIMEOUT_SCAN: &str =
    "SELECT id FROM timeout_timers WHERE next_at <= ? ORDER BY next_at LIMIT 500";

/// The rows one chat turn writes, straight through sqlx on one connection:
/// the human message on its own, then the AI message, a trace, three usage
/// records, a message tag and the session's activity in one transaction.
pub struct RawTurn {
    conn: tokio::sync::Mutex<Conn>,
    team_id: i64,
    session_id: i64,
    participant_id: i64,
    chatbot_row_id: i64,
    tag_id: i64,
    human: String,
    ai: String,
    trace: String,
    usage: String,
    tag: String,
}

/// SQL statements one raw turn sends, BEGIN/COMMIT not counted (the server's
/// counter does not count them either).
pub const RAW_TURN_STATEMENTS: f64 = 6.0;

impl RawTurn {
    pub async fn new(mut conn: Conn, demo: &Demo, session_external_id: &str) -> Result<RawTurn> {
        let by_external = [Val::Text(session_external_id.into())];
        let session_id = conn
            .i64(
                "SELECT id FROM sessions WHERE external_id = ?",
                &by_external,
            )
            .await?;
        let participant_id = conn
            .i64(
                "SELECT participant_id FROM sessions WHERE external_id = ?",
                &by_external,
            )
            .await?;
        let tag_id = conn
            .i64(
                &format!(
                    "INSERT INTO tags (team_id, name, is_system, category, created_by, created_at) \
                     VALUES ({}, 'bench-raw', true, 'bench', NULL, ?) RETURNING id",
                    demo.team_id
                ),
                &[Val::Time(Utc::now())],
            )
            .await?;
        let json = conn.empty_json();
        let t = demo.team_id;
        let usage_row =
            "(?, ?, ?, ?, ?, 'chat', ?, 'builtin', 'echo', 12, NULL, 0, 'USD', 'exact', ?)";
        Ok(RawTurn {
            human: format!(
                "INSERT INTO messages (team_id, session_id, role, content, summary, metadata, created_at) \
                 VALUES ({t}, ?, 'human', 'hello', NULL, {json}, ?) RETURNING id"
            ),
            ai: format!(
                "INSERT INTO messages (team_id, session_id, role, content, summary, metadata, created_at) \
                 VALUES ({t}, ?, 'ai', 'hello', NULL, {json}, ?) RETURNING id"
            ),
            trace: "INSERT INTO traces (team_id, session_id, chatbot_id, participant_id, version_number, \
                    status, duration_ms, input_message_id, output_message_id, error, llm_calls, created_at) \
                    VALUES (?, ?, ?, ?, 1, 'success', 0, ?, ?, NULL, 1, ?) RETURNING id"
                .into(),
            usage: format!(
                "INSERT INTO usage_records (team_id, trace_id, session_id, chatbot_id, participant_id, \
                 source, service_kind, provider_kind, model_name, quantity, unit_price_e8, cost_e8, \
                 currency, confidence, created_at) VALUES {}",
                values_list(usage_row, 3)
            ),
            tag: "INSERT INTO message_tags (team_id, message_id, tag_id, created_at) VALUES (?, ?, ?, ?)"
                .into(),
            conn: tokio::sync::Mutex::new(conn),
            team_id: demo.team_id,
            session_id,
            participant_id,
            chatbot_row_id: demo.chatbot_row_id,
            tag_id,
        })
    }

    async fn turn(&self) -> Result<()> {
        let mut c = self.conn.lock().await;
        let now = Utc::now();
        let (t, s, p, b) = (
            self.team_id,
            self.session_id,
            self.participant_id,
            self.chatbot_row_id,
        );
        let human = c.i64(&self.human, &[Val::I64(s), Val::Time(now)]).await?;
        c.exec("BEGIN", &[]).await?;
        let written = async {
            let ai = c.i64(&self.ai, &[Val::I64(s), Val::Time(now)]).await?;
            let trace = c
                .i64(
                    &self.trace,
                    &[
                        Val::I64(t),
                        Val::I64(s),
                        Val::I64(b),
                        Val::I64(p),
                        Val::I64(human),
                        Val::I64(ai),
                        Val::Time(now),
                    ],
                )
                .await?;
            let mut usage = Vec::with_capacity(21);
            for kind in ["input", "output", "cached_input"] {
                usage.extend([
                    Val::I64(t),
                    Val::I64(trace),
                    Val::I64(s),
                    Val::I64(b),
                    Val::I64(p),
                    Val::Text(kind.into()),
                    Val::Time(now),
                ]);
            }
            c.exec(&self.usage, &usage).await?;
            c.exec(
                &self.tag,
                &[
                    Val::I64(t),
                    Val::I64(ai),
                    Val::I64(self.tag_id),
                    Val::Time(now),
                ],
            )
            .await?;
            c.exec(
                "UPDATE sessions SET last_activity_at = ?, updated_at = ? WHERE id = ?",
                &[Val::Time(now), Val::Time(now), Val::I64(s)],
            )
            .await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        match written {
            Ok(()) => {
                c.exec("COMMIT", &[]).await?;
                Ok(())
            }
            Err(e) => {
                let _ = c.exec("ROLLBACK", &[]).await;
                Err(e)
            }
        }
    }

    pub async fn close(self) {
        self.conn.into_inner().close().await;
    }
}

impl Op for RawTurn {
    type State = ();

    fn state(&self, _addr: Option<std::net::SocketAddr>) -> Self::State {}

    fn call<'a>(&'a self, _worker: usize, _state: &'a mut ()) -> OpFuture<'a> {
        Box::pin(async move {
            self.turn().await?;
            Ok(true)
        })
    }
}

/// Fresh PostgreSQL databases for one run, dropped at the end whatever happened.
pub struct PgScratch {
    admin: String,
    created: Mutex<Vec<String>>,
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, name: &str) -> Result<String> {
    let scheme_end = url
        .find("://")
        .ok_or_else(|| anyhow!("not a postgres:// URL"))?
        + 3;
    let (head, rest) = url.split_at(scheme_end);
    let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
    let authority = rest[..rest.find(['/', '?']).unwrap_or(rest.len())].to_string();
    Ok(format!("{head}{authority}/{name}{query}"))
}

impl PgScratch {
    pub fn new(admin: &str) -> PgScratch {
        PgScratch {
            admin: admin.to_string(),
            created: Mutex::new(Vec::new()),
        }
    }

    /// Creates `csbench_<random>` and returns its URL.
    pub async fn create(&self) -> Result<String> {
        let name = format!("csbench_{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut admin = PgConnection::connect(&self.admin)
            .await
            .context("cannot connect to the PostgreSQL admin URL")?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        let _ = admin.close().await;
        if let Ok(mut list) = self.created.lock() {
            list.push(name.clone());
        }
        with_database(&self.admin, &name)
    }

    pub async fn drop_all(&self) -> Result<()> {
        let names = self
            .created
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        if names.is_empty() {
            return Ok(());
        }
        let mut admin = PgConnection::connect(&self.admin).await?;
        for name in names {
            // FORCE ends the backends of a server we killed without a goodbye.
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot drop database {name}"))?;
        }
        let _ = admin.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
    }

    #[test]
    fn database_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x").unwrap(),
            "postgres://h:5432/x"
        );
    }
}
