//! The benchmark harness: builds and starts chatstudio on loopback, seeds what
//! the reads need, drives each measure with a closed-loop client in this
//! process, and prints one table (and writes the same rows as JSON).
//!
//! `cargo run --release -p bench -- [--quick] [--postgres URL] [--out FILE]`

mod console;
mod db;
mod fake_openai;
mod http;
mod procstat;
mod report;
mod server;
mod widget;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use uuid::Uuid;

use crate::db::{Conn, Demo, PgScratch, RawTurn};
use crate::http::{Client, Probe, Replay, Req, Sample, Window, burst, closed_loop};
use crate::procstat::kib_to_mib;
use crate::report::Row;
use crate::server::{Instance, Server};
use crate::widget::{Availability, WidgetFlow};

/// The in-flight burst stops when the server's RSS passes this.
const RSS_CAP_KIB: u64 = 4 * 1024 * 1024;

/// Sequential requests behind each diagnostic median.
const DIAG_TURNS: usize = 21;

const USAGE: &str =
    "usage: bench [--quick] [--postgres URL] [--out FILE] [--only NAME,...] [--no-build]";

/// The original's figures (same machine class), quoted in the target column.
mod original {
    pub const TURN_RPS: f64 = 16.0;
    pub const EXPERIMENTS_RPS: f64 = 96.0;
    pub const SESSIONS_LIST_RPS: f64 = 6.5;
    pub const SESSION_DETAIL_RPS: f64 = 9.0;
    pub const WIDGET_FLOWS: f64 = 8.9;
}

mod target {
    pub const RAW: &str = "physical floor of a turn's writes (baseline)";
    pub const NOOP: &str = "HTTP floor (baseline)";
    pub const CHANNELS: &str = ">= 1600/s (100x original 16/s at c=10, p99 1.6 s)";
    pub const OPENAI: &str = ">= 1600/s (100x original 16/s)";
    pub const TIMEOUT_SCAN: &str = "< 10 ms with 1,000,000 sessions (full run)";
    pub const CODE: &str = "a Python node costs a fraction of a turn (ratio to turn_channels)";
    pub const EXPERIMENTS: &str = ">= 9600/s (100x original 96/s)";
    pub const SESSIONS_LIST: &str = ">= 1300/s (200x original 6.5/s)";
    pub const SESSION_DETAIL: &str = ">= 1800/s (200x original 9/s)";
    pub const WIDGET: &str = ">= 500 flows/s (original 8.9 flows/s)";
    pub const IN_FLIGHT: &str = "10000 in flight, 0 errors, <= 65 MiB (original ~1.3 GiB RSS)";
    pub const IDLE: &str = "<= 65 MiB (original ~1.3 GiB RSS)";
}

#[derive(Debug, Clone)]
struct Args {
    quick: bool,
    postgres: Option<String>,
    out: PathBuf,
    /// Measures to run (all when empty); for working on one measure.
    only: Vec<String>,
    /// Use the server binary already in the target dir (while the workspace
    /// is mid-edit and does not build).
    no_build: bool,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> Result<Args> {
        let mut args = Args {
            quick: false,
            postgres: None,
            out: server::workspace_dir()
                .join("bench")
                .join("results")
                .join("latest.json"),
            only: Vec::new(),
            no_build: false,
        };
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => args.quick = true,
                "--no-build" => args.no_build = true,
                "--postgres" => {
                    args.postgres =
                        Some(it.next().ok_or_else(|| anyhow!("--postgres needs a URL"))?)
                }
                "--out" => {
                    args.out = it
                        .next()
                        .ok_or_else(|| anyhow!("--out needs a file"))?
                        .into()
                }
                "--only" => {
                    let list = it.next().ok_or_else(|| anyhow!("--only needs names"))?;
                    args.only = list.split(',').map(str::to_string).collect();
                }
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown argument {other}\n{USAGE}"),
            }
        }
        if let Some(url) = &args.postgres
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            bail!("--postgres expects a postgres:// URL");
        }
        for n in &args.only {
            if !report::ORDER.contains(&n.as_str()) {
                bail!("unknown measure {n}; known: {}", report::ORDER.join(", "));
            }
        }
        Ok(args)
    }

    fn wants(&self, name: &str) -> bool {
        let measure = report::measure_of(name);
        self.only.is_empty() || self.only.iter().any(|n| n == measure)
    }
}

/// The `turn_code` chatbot.
const CODE_BOT: &str = r#"name: Code
config:
  pipeline:
    nodes:
      - {id: start, type: start}
      - id: py
        type: code
        params:
          code: |
            def main(input, **kwargs):
                total = sum(len(w) for w in input.split())
                set_participant_data_key('letters', total)
                return f'{input} has {total} letters'
      - {id: end, type: end}
    edges:
      - {from: start, to: py}
      - {from: py, to: end}
"#;

/// How long and how big each measure runs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    window: Window,
    sessions: usize,
    in_flight: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                window: Window {
                    warmup: Duration::from_secs(1),
                    duration: Duration::from_secs(5),
                },
                sessions: 100_000,
                in_flight: 2_000,
            }
        } else {
            Plan {
                window: Window {
                    warmup: Duration::from_secs(2),
                    duration: Duration::from_secs(15),
                },
                sessions: 1_000_000,
                in_flight: 10_000,
            }
        }
    }
}

fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

/// Many sockets at once (the in-flight measure holds two per turn in this
/// process: to the server and from it to the fake provider). Children
/// inherit the limit, so the server gets it too.
fn raise_open_files() -> u64 {
    use rlimit::Resource;
    let Ok((soft, hard)) = rlimit::getrlimit(Resource::NOFILE) else {
        return 0;
    };
    // Above the hard limit only works with privileges; fall back to the hard limit.
    let wanted = hard.max(65_536);
    if rlimit::setrlimit(Resource::NOFILE, wanted, wanted).is_ok() {
        return wanted;
    }
    if rlimit::setrlimit(Resource::NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

struct Bench<'a> {
    args: &'a Args,
    plan: Plan,
    inst: Instance,
    server: Server,
    probe: Probe,
    key: String,
    bot: Uuid,
    demo: Demo,
    conn: Conn,
    rows: Vec<Row>,
    nofile: u64,
    /// How long the sessions seed took, once it has run.
    seeded: Option<Duration>,
}

impl Bench<'_> {
    async fn open_conn(inst: &Instance) -> Result<Conn> {
        match &inst.database_url {
            Some(url) => Conn::postgres(url).await,
            None => Conn::sqlite(&inst.data_dir.join("chatstudio.sqlite3")).await,
        }
    }

    fn client(&self) -> Client {
        Client::new(self.probe.addr)
    }

    fn authed(&self, req: Req) -> Result<Req> {
        req.header("x-api-key", &self.key)
    }

    async fn point(&self, req: Req, c: usize) -> Result<Sample> {
        closed_loop(Arc::new(Replay(req)), c, self.plan.window, Some(self.probe)).await
    }

    fn rps_of(&self, name: &str, c: Option<u64>) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.name == name && (c.is_none() || r.concurrency == c))
            .and_then(|r| r.rps)
    }

    /// A session made through the API, for the reads and the raw floor.
    async fn create_session(&self, participant: &str, messages: usize) -> Result<String> {
        let msgs: Vec<_> = (0..messages)
            .map(|i| {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                json!({"role": role, "content": format!("message {i}: some ordinary chat text")})
            })
            .collect();
        let body = json!({"experiment": self.bot, "participant": participant, "messages": msgs});
        let created = self
            .client()
            .json(&self.authed(Req::post_json("/api/sessions/", &body))?)
            .await?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("POST /api/sessions/ answered no id"))
    }

    /// `/reset` ends the key user's open session; the next turn starts a new one.
    async fn reset_channels_session(&self) -> Result<()> {
        let reset = self.authed(Req::post_json(
            format!("/channels/api/{}/incoming_message", self.bot),
            &json!({"message": "/reset"}),
        ))?;
        self.client().json(&reset).await.map(|_| ())
    }

    /// Messages in the key user's latest channels session with the demo bot.
    async fn channels_session_messages(&mut self) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM messages WHERE session_id = (SELECT s.id FROM sessions s \
             JOIN participants p ON p.id = s.participant_id \
             WHERE s.chatbot_id = {} AND p.team_id = {} AND p.platform = 'api' AND p.identifier = ? \
             ORDER BY s.created_at DESC, s.id DESC LIMIT 1)",
            self.demo.chatbot_row_id, self.demo.team_id
        );
        let email = db::Val::Text(self.demo.user_email.clone());
        self.conn.i64(&sql, &[email]).await
    }

    /// Median latency of a few sequential requests, for the diagnostic notes.
    async fn sequential_ms(&self, req: &Req) -> Result<f64> {
        let mut client = self.client();
        let mut took = Vec::with_capacity(DIAG_TURNS);
        for _ in 0..DIAG_TURNS {
            let t0 = Instant::now();
            client.json(req).await?;
            took.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        took.sort_by(f64::total_cmp);
        Ok(took[took.len() / 2])
    }

    async fn raw_db(&mut self) -> Result<()> {
        progress("raw_db_turn_rows");
        let session = self.create_session("bench-raw-floor", 0).await?;
        let conn = Self::open_conn(&self.inst).await?;
        let raw = Arc::new(RawTurn::new(conn, &self.demo, &session).await?);
        let mut s = closed_loop(raw.clone(), 1, self.plan.window, None).await?;
        s.statements_per_request = Some(db::RAW_TURN_STATEMENTS);
        if let Ok(raw) = Arc::try_unwrap(raw) {
            raw.close().await;
        }
        let note = if self.inst.database_url.is_some() {
            "same PostgreSQL database, one connection"
        } else {
            "same SQLite file and pragmas (WAL, synchronous=NORMAL, busy_timeout=5000, foreign_keys=ON), one connection"
        };
        self.rows
            .push(Row::from_sample("raw_db_turn_rows", &s, target::RAW).note(note));
        Ok(())
    }

    async fn noop(&mut self) -> Result<()> {
        for c in [1, 10, 50] {
            progress(&format!("noop_http c={c}"));
            let s = self.point(Req::get("/livez"), c).await?;
            self.rows
                .push(Row::from_sample("noop_http", &s, target::NOOP));
        }
        Ok(())
    }

    async fn turns(&mut self) -> Result<()> {
        let raw = self.rps_of("raw_db_turn_rows", None);
        let channels = self.authed(Req::post_json(
            format!("/channels/api/{}/incoming_message", self.bot),
            &json!({"message": "hello"}),
        ))?;
        if self.args.wants("turn_channels") {
            for c in [1, 10, 50] {
                progress(&format!("turn_channels c={c}"));
                // Every call is the key's user, so all turns land in one session;
                // a fresh one per point keeps the points comparable.
                self.reset_channels_session().await?;
                let s = self.point(channels.clone(), c).await?;
                let grown = self.channels_session_messages().await?;
                let mut row = Row::from_sample("turn_channels", &s, target::CHANNELS)
                    .baseline("raw_db_turn_rows", raw)
                    .original(original::TURN_RPS);
                row = if c == 50 {
                    let long = self.sequential_ms(&channels).await?;
                    self.reset_channels_session().await?;
                    let fresh = self.sequential_ms(&channels).await?;
                    row.note(format!(
                        "one shared session per point, {grown} messages at the end; \
                         a single turn takes {long:.2} ms on it vs {fresh:.2} ms on a fresh session (median of {DIAG_TURNS})"
                    ))
                } else {
                    row.note(format!("one shared session, {grown} messages at the end"))
                };
                self.rows.push(row);
            }
        }
        if self.args.wants("turn_code") {
            self.code_turns().await?;
        }
        let openai = self.authed(Req::post_json(
            format!("/api/openai/{}/chat/completions", self.bot),
            &json!({"messages": [{"role": "user", "content": "hello"}]}),
        ))?;
        if self.args.wants("turn_openai") {
            for c in [1, 10, 50] {
                progress(&format!("turn_openai c={c}"));
                let s = self.point(openai.clone(), c).await?;
                self.rows.push(
                    Row::from_sample("turn_openai", &s, target::OPENAI)
                        .baseline("raw_db_turn_rows", raw)
                        .original(original::TURN_RPS),
                );
            }
        }
        Ok(())
    }

    /// Turns through a chatbot whose pipeline is one Python node (a loop
    /// and a participant-data write), beside the demo bot's turn.
    async fn code_turns(&mut self) -> Result<()> {
        let file = self.inst.data_dir.join("code-bot.yaml");
        std::fs::write(&file, CODE_BOT)?;
        let out = self
            .inst
            .cli(
                &[
                    "chatbot",
                    "apply",
                    "--team",
                    "demo",
                    "--file",
                    &file.to_string_lossy(),
                ],
                &[],
            )
            .await?;
        let bot = out
            .lines()
            .rev()
            .map(str::trim)
            .find_map(|l| Uuid::parse_str(l).ok())
            .ok_or_else(|| anyhow!("chatbot apply printed no id: {out}"))?;
        let req = self.authed(Req::post_json(
            format!("/channels/api/{bot}/incoming_message"),
            &json!({"message": "hello there"}),
        ))?;
        let channels = self.rps_of("turn_channels", Some(10));
        progress("turn_code c=10");
        let s = self.point(req, 10).await?;
        let mut row = Row::from_sample("turn_code", &s, target::CODE).note(
            "start -> code -> end; the code sums word lengths and sets a participant-data key (one helper call)",
        );
        if let Some(c) = channels {
            row = row.baseline("turn_channels c=10", Some(c));
        }
        self.rows.push(row);
        Ok(())
    }

    async fn experiments(&mut self) -> Result<()> {
        progress("experiments_list c=10");
        let s = self
            .point(self.authed(Req::get("/api/experiments/"))?, 10)
            .await?;
        let noop = self.rps_of("noop_http", Some(10));
        self.rows.push(
            Row::from_sample("experiments_list", &s, target::EXPERIMENTS)
                .baseline("noop_http c=10", noop)
                .original(original::EXPERIMENTS_RPS),
        );
        Ok(())
    }

    async fn session_detail(&mut self) -> Result<()> {
        progress("session_detail c=10");
        let id = self.create_session("bench-detail", 50).await?;
        let s = self
            .point(self.authed(Req::get(format!("/api/sessions/{id}/")))?, 10)
            .await?;
        let noop = self.rps_of("noop_http", Some(10));
        self.rows.push(
            Row::from_sample("session_detail", &s, target::SESSION_DETAIL)
                .baseline("noop_http c=10", noop)
                .original(original::SESSION_DETAIL_RPS)
                .note("a session with 50 messages"),
        );
        Ok(())
    }

    async fn sessions_list(&mut self) -> Result<()> {
        let took = self.seed_sessions().await?;
        progress("sessions_list c=10");
        let s = self
            .point(self.authed(Req::get("/api/sessions/?page_size=100"))?, 10)
            .await?;
        let noop = self.rps_of("noop_http", Some(10));
        // The first page also counts the whole listing; an empty cursor asks
        // for the same page without the count (see domain::pagination).
        let with_count = self
            .sequential_ms(&self.authed(Req::get("/api/sessions/?page_size=100"))?)
            .await?;
        let without_count = self
            .sequential_ms(&self.authed(Req::get("/api/sessions/?page_size=100&cursor="))?)
            .await?;
        self.rows.push(
            Row::from_sample("sessions_list", &s, target::SESSIONS_LIST)
                .baseline("noop_http c=10", noop)
                .original(original::SESSIONS_LIST_RPS)
                .note(format!(
                    "{} seeded sessions (seeding took {:.1} s), first page of 100; one request alone: \
                     {with_count:.2} ms, {without_count:.2} ms for the same page without the count (median of {DIAG_TURNS})",
                    self.plan.sessions,
                    took.as_secs_f64()
                )),
        );
        Ok(())
    }

    /// The timeout scan with a timer armed on every seeded session, ten due.
    async fn timeout_scan(&mut self) -> Result<()> {
        progress("timeout_scan: arming a timer per seeded session");
        let armed = db::seed_timers(&mut self.conn, &self.demo, 10).await?;
        progress("timeout_scan");
        let mut ms = Vec::with_capacity(DIAG_TURNS * 10);
        let t0 = Instant::now();
        for _ in 0..DIAG_TURNS * 10 {
            let started = Instant::now();
            let due = self
                .conn
                .i64s(db::TIMEOUT_SCAN, &[db::Val::Time(chrono::Utc::now())])
                .await?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            if due.len() != 10 {
                anyhow::bail!("the timeout scan found {} due timers, not 10", due.len());
            }
        }
        let took = t0.elapsed().as_secs_f64();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        let mut row = Row::empty("timeout_scan", target::TIMEOUT_SCAN);
        row.concurrency = Some(1);
        row.requests = Some(ms.len() as u64);
        row.errors = Some(0);
        row.rps = Some((ms.len() as f64 / took * 10.0).round() / 10.0);
        (row.p50_ms, row.p90_ms, row.p99_ms) = (
            Some((at(0.5) * 100.0).round() / 100.0),
            Some((at(0.9) * 100.0).round() / 100.0),
            Some((at(0.99) * 100.0).round() / 100.0),
        );
        self.rows.push(row.note(format!(
            "{armed} timers armed (one per seeded session), 10 due; the scan's query on one \
             database connection, {} runs",
            ms.len()
        )));
        Ok(())
    }

    async fn widget(&mut self) -> Result<()> {
        progress("widget_flow");
        let flow =
            WidgetFlow::probe(self.probe.addr, self.bot, &self.key, &self.demo.user_email).await?;
        let flow = match flow {
            Availability::Missing => {
                self.rows.push(
                    Row::empty("widget_flow", target::WIDGET)
                        .original(original::WIDGET_FLOWS)
                        .note("not available: endpoint not implemented (POST /api/chat/start/ answers 404)"),
                );
                return Ok(());
            }
            Availability::Ready(f) => Arc::new(f),
        };
        for c in [1, 10, 50] {
            progress(&format!("widget_flow c={c}"));
            let s = closed_loop(flow.clone(), c, self.plan.window, Some(self.probe)).await?;
            let turns = self.rps_of("turn_channels", Some(c as u64));
            self.rows.push(
                Row::from_sample("widget_flow", &s, target::WIDGET)
                    .baseline(&format!("turn_channels c={c}"), turns)
                    .original(original::WIDGET_FLOWS),
            );
        }
        Ok(())
    }

    async fn in_flight(&mut self) -> Result<()> {
        let n = self.plan.in_flight;
        progress(&format!("in_flight: {n} turns against a 2 s provider"));
        let fake = fake_openai::FakeOpenAi::start().await?;
        let base = format!("http://{}", fake.addr);
        self.inst
            .cli(
                &[
                    "provider",
                    "add",
                    "--team",
                    "demo",
                    "--name",
                    "slow",
                    "--type",
                    "openai",
                    "--base-url",
                    &base,
                    "--api-key-env",
                    "BENCH_KEY",
                ],
                &[("BENCH_KEY", "sk-bench")],
            )
            .await?;
        let out = self
            .inst
            .cli(
                &[
                    "chatbot",
                    "create",
                    "--team",
                    "demo",
                    "--name",
                    "Slow",
                    "--provider",
                    "slow",
                    "--model",
                    "gpt-4o-mini",
                    "--prompt",
                    "Be brief",
                ],
                &[],
            )
            .await?;
        let slow = out
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .and_then(|l| Uuid::parse_str(l).ok())
            .ok_or_else(|| anyhow!("chatbot create printed no id: {out}"))?;
        let req = self.authed(Req::post_json(
            format!("/channels/api/{slow}/incoming_message"),
            &json!({"message": "hello"}),
        ))?;
        let rss = || {
            procstat::proc_status_kib(self.probe.pid, "VmRSS")
                .map_or_else(|| "?".into(), |k| format!("{:.0}", kib_to_mib(k)))
        };
        let before = rss();
        // 4 GiB is 60 times the target; past that (or half the free memory)
        // the outcome is clear and the machine is shared.
        let cap =
            procstat::mem_available_kib().map_or(RSS_CAP_KIB, |free| (free / 2).min(RSS_CAP_KIB));
        let s = burst(req, n, self.probe, Duration::from_secs(300), cap).await?;
        if s.capped {
            // Its turns run on detached tasks and would keep growing: stop it.
            self.server.kill();
            let note = format!(
                "ABORTED: server RSS passed {:.0} MiB after {:.1} s with {} of {n} completed; the server was killed",
                kib_to_mib(cap),
                s.elapsed.as_secs_f64(),
                s.ok
            );
            self.rows
                .push(Row::from_sample("in_flight", &s, target::IN_FLIGHT).note(note));
            return Ok(());
        }
        let note = format!(
            "{} of {n} completed, {} errors, all done in {:.1} s (provider answers in {} s); \
             RSS {before} MiB before, {} MiB after; bench open files peaked at {} of {}",
            s.ok,
            s.errors,
            s.elapsed.as_secs_f64(),
            fake_openai::LATENCY.as_secs(),
            rss(),
            s.bench_fds_peak,
            self.nofile
        );
        self.rows
            .push(Row::from_sample("in_flight", &s, target::IN_FLIGHT).note(note));
        drop(fake);
        Ok(())
    }
}

/// A second instance on an empty database: start-up time and memory at rest.
async fn idle(bin: &std::path::Path, dir: &std::path::Path, pg: Option<&PgScratch>) -> Result<Row> {
    progress("idle: starting a second instance on an empty database");
    let database_url = match pg {
        Some(pg) => Some(pg.create().await?),
        None => None,
    };
    let inst = Instance {
        bin: bin.to_path_buf(),
        data_dir: dir.to_path_buf(),
        database_url,
    };
    let server = Server::start(&inst).await?;
    let started_ms = server.started_in.as_secs_f64() * 1000.0;
    let rss = server.rss_at_start_kib.map(kib_to_mib);
    server.stop().await;
    let mut row = Row::empty("idle", target::IDLE);
    row.peak_rss_mib = rss.map(|m| (m * 10.0).round() / 10.0);
    // The start-up time rides in the latency columns: one sample, spawn to
    // the first 200 on /healthz (migrations and the demo seed included).
    let ms = (started_ms * 100.0).round() / 100.0;
    (row.p50_ms, row.p90_ms, row.p99_ms) = (Some(ms), Some(ms), Some(ms));
    row.requests = Some(1);
    Ok(row.note(format!(
        "start-up {ms:.0} ms from spawn to the first 200 on /healthz (fresh database: migrations + demo seed); RSS {} MiB right then",
        rss.map_or_else(|| "?".into(), |m| format!("{m:.1}"))
    )))
}

/// Every measure on the main instance, in run order.
async fn measure(b: &mut Bench<'_>) -> Result<()> {
    // Turns and small reads run before the bulk seed, so the seed does not
    // colour them.
    if b.args.wants("raw_db_turn_rows")
        || b.args.wants("turn_channels")
        || b.args.wants("turn_code")
        || b.args.wants("turn_openai")
    {
        b.raw_db().await?;
    }
    if b.args.wants("noop_http")
        || b.args.wants("experiments_list")
        || b.args.wants("session_detail")
        || b.args.wants("sessions_list")
    {
        b.noop().await?;
    }
    b.turns().await?;
    if b.args.wants("experiments_list") {
        b.experiments().await?;
    }
    if b.args.wants("session_detail") {
        b.session_detail().await?;
    }
    if b.args.wants("widget_flow") {
        b.widget().await?;
    }
    if b.args.wants("sessions_list") || b.args.wants("timeout_scan") {
        b.sessions_list().await?;
    }
    if b.args.wants("timeout_scan") {
        b.timeout_scan().await?;
    }
    if b.args.wants("console_pages") {
        b.console_pages().await?;
    }
    // Last on the main instance: the memory it takes is not all given back,
    // and would show in the peak RSS of any later point.
    if b.args.wants("in_flight") {
        b.in_flight().await?;
    }
    Ok(())
}

async fn bench(args: &Args, pg: Option<&PgScratch>) -> Result<Vec<Row>> {
    let t0 = Instant::now();
    let plan = Plan::new(args.quick);
    let nofile = raise_open_files();
    progress(&format!("open-files limit {nofile}"));
    let target_dir = server::target_dir()?;
    let bin = if args.no_build {
        let bin = target_dir.join("release").join("chatstudio");
        if !bin.exists() {
            bail!("--no-build: {} does not exist", bin.display());
        }
        bin
    } else {
        progress(&format!(
            "building chatstudio (release) into {}",
            target_dir.display()
        ));
        let bin = server::build(&target_dir).await?;
        progress(&format!("built in {:.0} s", t0.elapsed().as_secs_f64()));
        bin
    };
    let t0 = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("chatstudio-bench-")
        .tempdir()?;
    let database_url = match pg {
        Some(pg) => Some(pg.create().await?),
        None => None,
    };
    let inst = Instance {
        bin: bin.clone(),
        data_dir: tmp.path().join("main"),
        database_url,
    };
    let server = Server::start(&inst).await?;
    progress(&format!(
        "server pid {} on {} (healthy after {} ms)",
        server.pid,
        server.addr,
        server.started_in.as_millis()
    ));
    let key = server.api_key()?;
    let bot = server.demo_chatbot()?;
    let mut conn = Bench::open_conn(&inst).await?;
    let demo = db::demo(&mut conn, bot, &key).await?;
    let probe = Probe {
        addr: server.addr,
        pid: server.pid,
    };
    let mut b = Bench {
        args,
        plan,
        inst,
        server,
        probe,
        key,
        bot,
        demo,
        conn,
        rows: Vec::new(),
        nofile,
        seeded: None,
    };
    let measured = measure(&mut b).await;
    if let Err(e) = measured {
        return Err(match b.server.post_mortem() {
            Some(pm) => e.context(pm),
            None => e,
        });
    }
    let Bench {
        server, conn, rows, ..
    } = b;
    let mut rows = rows;
    conn.close().await;
    server.stop().await;
    if args.wants("idle") {
        rows.push(idle(&bin, &tmp.path().join("idle"), pg).await?);
    }
    if !args.only.is_empty() {
        rows.retain(|r| args.wants(r.name));
    }
    report::sort(&mut rows);
    progress(&format!(
        "measured in {:.0} s (build excluded)",
        t0.elapsed().as_secs_f64()
    ));
    Ok(rows)
}

async fn run(args: Args) -> Result<()> {
    let pg = args.postgres.as_deref().map(PgScratch::new);
    let outcome = tokio::select! {
        r = bench(&args, pg.as_ref()) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    // The bench future is gone by now, and with it every server it started.
    if let Some(pg) = &pg
        && let Err(e) = pg.drop_all().await
    {
        progress(&format!("warning: {e:#}"));
    }
    let rows = outcome?;
    report::write_json(&rows, &args.out)?;
    let backend = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let heading = format!(
        "chatstudio bench ({}, {backend}) — results in {}\n{}",
        if args.quick { "quick" } else { "full" },
        args.out.display(),
        report::machine_facts()
    );
    report::print_table(&rows, &heading).context("cannot print the table")
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
