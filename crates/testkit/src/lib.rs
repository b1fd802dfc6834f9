//! Test harness: starts the real server on 127.0.0.1:0 against a temporary
//! SQLite file or a fresh PostgreSQL database, builds fixtures through the
//! domain layer, and checks bodies against the upstream contract.
//!
//! PostgreSQL runs when `CHATSTUDIO_TEST_POSTGRES_URL` is set (an admin URL such
//! as `postgres://postgres@127.0.0.1:5432/postgres`); each app gets its own
//! database, dropped afterwards. Under `CI=true` a missing URL fails the test
//! instead of skipping it.
//!
//! Besides [`TestApp`] and [`both_backends!`]: [`process`] runs the
//! `chatstudio` binary as a child process on a test database, [`widget`] talks
//! to the chat widget API as a page would, [`contract`] checks bodies.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their harness fail loudly"
)]

pub mod browser;
pub mod console;
pub mod contract;
pub mod fixtures;
mod options;
pub use options::Options;
pub mod pg;
pub mod process;
pub use process::code_workers;
pub mod smtp;
pub mod widget;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use domain::Domain;
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use tempfile::TempDir;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub engine: engine::Engine,
    pub addr: SocketAddr,
    pub base: String,
    pub client: Client,
    pub domain: Domain,
    pub backend: Backend,
    pub data_dir: TempDir,
    pub db_url: Option<String>,
    /// The settings it was started with.
    pub options: Options,
    running: Option<server::serve::Running>,
    pg: Option<pg::TempDatabase>,
    telegram: Option<wiremock::MockServer>,
    whatsapp: Option<wiremock::MockServer>,
    smtp: Option<smtp::SmtpSink>,
}

/// Settings a test may change.
/// Sends a request: its status and its body as JSON (or as a JSON string
/// when it is not JSON).
pub async fn status_json(rb: RequestBuilder) -> (u16, Value) {
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// Sends a request that must answer 200 with a `text/event-stream`: its
/// server-sent events, blank separators dropped.
pub async fn event_stream(rb: RequestBuilder) -> Vec<String> {
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// A multipart body of one `files` part.
pub fn file_form(name: &str, bytes: Vec<u8>, content_type: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str(content_type)
            .unwrap(),
    )
}

/// A plain HTTP client for tests that drive a server process (the TLS
/// crypto provider installed first, as the server does).
pub fn http_client() -> reqwest::Client {
    llm::http::install_crypto_provider();
    reqwest::Client::new()
}

/// The largest custom action answer test servers accept.
pub const OUTBOUND_MAX_BYTES: usize = 64 * 1024;

/// A team with its owner and two keys.
#[derive(Debug, Clone)]
pub struct TestTeam {
    pub id: domain::TeamId,
    pub slug: String,
    pub owner_id: i64,
    pub key: String,
    pub read_only_key: String,
}

impl TestApp {
    /// Starts an app on `backend`, or returns `None` when PostgreSQL is not
    /// configured outside CI (the test is then skipped).
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, Options::default()).await
    }

    /// Starts an app with non-default settings.
    pub async fn start_with(backend: Backend, o: Options) -> Option<Self> {
        let data_dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(pg::TempDatabase::create().await?),
        };
        let db_url = pg.as_ref().map(|p| p.url.clone());
        let telegram = if o.fake_telegram {
            Some(wiremock::MockServer::start().await)
        } else {
            None
        };
        let telegram_api_url = match &telegram {
            Some(fake) => fake.uri(),
            None => o
                .telegram_api_url
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:9".to_string()),
        };
        let whatsapp = if o.fake_whatsapp {
            Some(wiremock::MockServer::start().await)
        } else {
            None
        };
        let unreachable = || "http://127.0.0.1:9".to_string();
        let meta_api_url = whatsapp.as_ref().map_or_else(unreachable, |f| f.uri());
        let smtp = if o.smtp_sink {
            Some(smtp::SmtpSink::start().await)
        } else {
            None
        };
        let cfg = store::DbConfig {
            url: db_url.clone(),
            data_dir: data_dir.path().to_path_buf(),
            max_connections: 4,
        };
        let opts = server::serve::Options {
            db: cfg,
            bind: "127.0.0.1:0".parse().unwrap(),
            seed_demo: false,
            engine: engine::EngineSettings {
                provider_timeout: std::time::Duration::from_secs(2),
                max_retries: 2,
                retry_base_delay: std::time::Duration::from_millis(5),
                telegram_api_url,
                twilio_api_url: meta_api_url.clone(),
                turn_api_url: meta_api_url.clone(),
                meta_api_url,
                smtp: smtp.as_ref().map(|s| engine::SmtpSettings {
                    url: s.url(),
                    from: "Bot <bot@chatstudio.test>".into(),
                }),
                // Fake APIs listen on 127.0.0.1 only; other private addresses stay refused.
                outbound: engine::outbound::OutboundSettings {
                    allow: vec!["127.0.0.1".parse().unwrap()],
                    timeout: std::time::Duration::from_secs(1),
                    max_response_bytes: OUTBOUND_MAX_BYTES,
                },
                code: o.code.clone(),
                timeout_scan: std::time::Duration::from_secs(5),
                public_url: o.public_url.clone(),
            },
            files_url: None,
            workers: o.workers,
            chat_rate: o.chat_rate,
            enforce_rate_limits: true,
            // Tests drive the scheduler with their own clock (`domain::schedules::tick`).
            scheduler: false,
            public_url: o.public_url.clone(),
            http: o.http,
            upload_quota_channel: o.upload_quota.0,
            upload_quota_client: o.upload_quota.1,
        };
        let running = server::serve::start(&opts).await.expect("server starts");
        let addr = running.addr;
        let engine = running.engine.clone();
        Some(TestApp {
            engine,
            addr,
            base: format!("http://{addr}"),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            domain: running.domain.clone(),
            backend,
            data_dir,
            db_url,
            options: o,
            running: Some(running),
            pg,
            telegram,
            whatsapp,
            smtp,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match key {
            Some(k) => rb.header("X-Api-Key", k),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.request(Method::GET, path, Some(key))
            .send()
            .await
            .unwrap()
    }

    /// An unauthenticated GET.
    pub async fn get_public(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A file stored for `team` the way uploads and generated files are.
    pub async fn stored_file(
        &self,
        team: domain::TeamId,
        (name, content_type): (&str, &str),
        purpose: &str,
        bytes: &'static [u8],
    ) -> domain::files::StoredFile {
        let d = &self.domain;
        let bytes = bytes::Bytes::from_static(bytes);
        domain::files::create(
            &d.db.write,
            &d.files,
            team,
            name,
            content_type,
            purpose,
            bytes,
        )
        .await
        .unwrap()
    }

    /// GET that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str, key: &str) -> Value {
        let r = self.get(path, key).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Creates a team with its owner, a read-write and a read-only key.
    pub async fn team(&self, slug: &str) -> TestTeam {
        let db = &self.domain.db.write;
        let (t, owner) = domain::teams::create(db, slug, None).await.unwrap();
        let (_, key) = domain::keys::create(db, t.id, owner, "rw", false)
            .await
            .unwrap();
        let (_, ro) = domain::keys::create(db, t.id, owner, "ro", true)
            .await
            .unwrap();
        TestTeam {
            id: t.id,
            slug: t.slug,
            owner_id: owner,
            key,
            read_only_key: ro,
        }
    }

    pub async fn chatbot(&self, team: &TestTeam, name: &str) -> Uuid {
        self.new_chatbot(team, name, None).await
    }

    async fn new_chatbot(&self, team: &TestTeam, name: &str, config: Option<Value>) -> Uuid {
        let db = &self.domain.db.write;
        domain::chatbots::create(db, team.id, Some(team.owner_id), name, None, config)
            .await
            .unwrap()
            .id
    }

    pub async fn publish(&self, team: &TestTeam, bot: Uuid, description: &str, publish: bool) {
        domain::chatbots::create_version(&self.domain.db.write, team.id, bot, description, publish)
            .await
            .unwrap();
    }

    /// Adds a provider to a team (credential sealed as the CLI would).
    pub async fn provider(
        &self,
        team: &TestTeam,
        name: &str,
        kind: &str,
        base_url: Option<&str>,
        key: Option<&str>,
    ) {
        domain::providers::add(
            &self.domain.db.write,
            &self.domain.secrets,
            team.id,
            domain::providers::NewProvider {
                name: name.into(),
                kind: kind.into(),
                base_url: base_url.map(str::to_string),
                api_key: key.map(str::to_string),
                headers: Vec::new(),
                timeout_secs: None,
            },
        )
        .await
        .unwrap();
    }

    /// Adds a custom action to a team (secret sealed as the CLI would).
    pub async fn action(&self, team: &TestTeam, a: domain::actions::NewAction) {
        domain::actions::add(&self.domain.db.write, &self.domain.secrets, team.id, a)
            .await
            .unwrap();
    }

    /// A chatbot whose configuration is `config`.
    pub async fn chatbot_with(&self, team: &TestTeam, name: &str, config: Value) -> Uuid {
        self.new_chatbot(team, name, Some(config)).await
    }

    /// A chatbot with one LLM node.
    pub async fn llm_chatbot(
        &self,
        team: &TestTeam,
        provider: &str,
        model: &str,
        prompt: &str,
        history: Value,
    ) -> Uuid {
        let mut pipeline = serde_json::to_value(domain::pipeline::Pipeline::single_llm(
            provider, model, prompt,
        ))
        .unwrap();
        pipeline["nodes"][1]["params"]["history"] = history;
        self.chatbot_with(team, "Bot", serde_json::json!({ "pipeline": pipeline }))
            .await
    }

    /// A message to a chatbot through the API channel as the team's key user.
    pub async fn api_message(&self, team: &TestTeam, bot: Uuid, text: &str) -> (u16, Value) {
        self.post_json(
            &format!("/channels/api/{bot}/incoming_message"),
            &team.key,
            &serde_json::json!({ "message": text }),
        )
        .await
    }

    /// `POST /api/trigger_bot`: `bot` sends `text` to the participant
    /// `identifier` on `platform`, as the team's key user.
    pub async fn trigger_bot(
        &self,
        team: &TestTeam,
        bot: Uuid,
        platform: &str,
        identifier: &str,
        text: &str,
    ) -> (u16, Value) {
        let body = serde_json::json!({"identifier": identifier, "platform": platform, "experiment": bot, "message_text": text});
        self.post_json("/api/trigger_bot", &team.key, &body).await
    }

    /// [`TestApp::trigger_bot`] that must be accepted, then [`TestApp::settle`].
    pub async fn trigger_bot_settled(
        &self,
        team: &TestTeam,
        bot: Uuid,
        platform: &str,
        identifier: &str,
        text: &str,
    ) {
        let (s, v) = self
            .trigger_bot(team, bot, platform, identifier, text)
            .await;
        assert_eq!(s, 200, "{v}");
        self.settle().await;
    }

    /// POST a JSON body; returns the status and the parsed body (`Null` if not JSON).
    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let r = self
            .request(Method::POST, path, Some(key))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST /api/sessions/` for `participant` with `bot`: the status and body.
    pub async fn api_session(&self, key: &str, bot: Uuid, participant: &str) -> (u16, Value) {
        let body = serde_json::json!({"experiment": bot, "participant": participant});
        self.post_json("/api/sessions/", key, &body).await
    }

    /// The public id of the app's only (or first) session.
    pub async fn only_session(&self) -> String {
        let rows = self
            .rows("SELECT external_id FROM sessions ORDER BY id", &["id"])
            .await;
        rows[0]["id"].as_str().unwrap().to_string()
    }

    /// The traces of the app's only session, as `GET /api/sessions/{id}/traces/` lists them.
    pub async fn traces(&self, team: &TestTeam) -> Vec<Value> {
        let sid = self.only_session().await;
        let v = self
            .get_json(&format!("/api/sessions/{sid}/traces/"), &team.key)
            .await;
        v["results"].as_array().unwrap().clone()
    }

    /// One integer from a SQL query (counts, ids) on the app's database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        let db = &self.domain.db.read;
        let stmt = sea_orm::Statement::from_string(db.get_database_backend(), sql.to_string());
        let row = db.query_one_raw(stmt).await.unwrap().unwrap();
        row.try_get_by_index::<i64>(0)
            .or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from))
            .unwrap()
    }

    /// Rows of a SQL query as JSON objects of their text columns.
    pub async fn rows(&self, sql: &str, cols: &[&str]) -> Vec<Value> {
        use sea_orm::ConnectionTrait;
        let db = &self.domain.db.read;
        let stmt = sea_orm::Statement::from_string(db.get_database_backend(), sql.to_string());
        db.query_all_raw(stmt)
            .await
            .unwrap()
            .into_iter()
            .map(|row| {
                let mut m = serde_json::Map::new();
                for (i, c) in cols.iter().enumerate() {
                    let v = row
                        .try_get_by_index::<Option<String>>(i)
                        .map(|o| o.map_or(Value::Null, Value::String))
                        .or_else(|_| {
                            row.try_get_by_index::<Option<i64>>(i)
                                .map(|o| o.map_or(Value::Null, Value::from))
                        })
                        .or_else(|_| {
                            row.try_get_by_index::<Option<i32>>(i)
                                .map(|o| o.map_or(Value::Null, Value::from))
                        })
                        .unwrap_or(Value::Null);
                    m.insert((*c).to_string(), v);
                }
                Value::Object(m)
            })
            .collect()
    }

    /// A widget channel for a chatbot: (channel, embed key).
    pub async fn widget(
        &self,
        bot: Uuid,
        domains: &[&str],
        level: domain::channels::widget::AuthLevel,
    ) -> (domain::channels::widget::WidgetChannel, String) {
        let d: Vec<String> = domains.iter().map(|s| (*s).to_string()).collect();
        domain::channels::widget::add(&self.domain.db.write, bot, &d, level, None)
            .await
            .unwrap()
    }

    /// A team's `local` builtin provider and a chatbot whose one LLM node
    /// echoes (`You said: …`) with no prompt and default history.
    pub async fn echo_bot(&self, team: &TestTeam) -> Uuid {
        self.provider(team, "local", "builtin", None, None).await;
        self.llm_chatbot(team, "local", "echo", "", serde_json::json!({}))
            .await
    }

    /// The mail sink of an app started with `smtp_sink`.
    pub fn smtp(&self) -> &smtp::SmtpSink {
        self.smtp
            .as_ref()
            .expect("start the app with `Options { smtp_sink: true, .. }`")
    }

    /// The fake Telegram Bot API of an app started with `fake_telegram`.
    pub fn telegram(&self) -> &wiremock::MockServer {
        self.telegram
            .as_ref()
            .expect("start the app with `Options { fake_telegram: true, .. }`")
    }

    /// The fake WhatsApp provider API of an app started with `fake_whatsapp`.
    pub fn whatsapp(&self) -> &wiremock::MockServer {
        self.whatsapp
            .as_ref()
            .expect("start the app with `Options { fake_whatsapp: true, .. }`")
    }

    /// A widget client for an embed key, sending `Origin: origin`.
    pub fn widget_client(&self, embed_key: &str, origin: &str) -> widget::WidgetClient {
        widget::WidgetClient::new(self.client.clone(), &self.base, embed_key, origin)
    }

    /// Polls a chat task (`GET /api/chat/{sid}/{task}/poll/`, authenticated by
    /// `auth`) until it is no longer processing; returns the last answer.
    pub async fn wait_task(
        &self,
        sid: &str,
        task: &str,
        auth: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> (u16, Value) {
        let path = format!("/api/chat/{sid}/{task}/poll/");
        widget::poll_until_done(task, || auth(self.request(Method::GET, &path, None))).await
    }

    /// Waits until no job is queued or running (generous deadline; the panic
    /// lists the stuck jobs).
    pub async fn settle(&self) {
        self.settle_within(Duration::from_secs(60)).await;
    }

    /// [`TestApp::settle`] with another deadline.
    pub async fn settle_within(&self, limit: Duration) {
        const BUSY: &str = "status IN ('queued', 'running')";
        let deadline = Instant::now() + limit;
        loop {
            let busy = self
                .scalar(&format!("SELECT COUNT(*) FROM jobs WHERE {BUSY}"))
                .await;
            if busy == 0 {
                return;
            }
            if Instant::now() >= deadline {
                let stuck = self
                    .rows(
                        &format!(
                            "SELECT id, kind, status, attempts, locked_by, last_error FROM jobs \
                             WHERE {BUSY} ORDER BY id LIMIT 20"
                        ),
                        &[
                            "id",
                            "kind",
                            "status",
                            "attempts",
                            "locked_by",
                            "last_error",
                        ],
                    )
                    .await;
                panic!(
                    "jobs did not settle within {limit:?}: {busy} still queued or running \
                     ({} workers in the app); the first of them: {stuck:#?}",
                    self.options.workers
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls a SQL count until it equals `want` (or a generous deadline
    /// passes); returns the last count, for the test to assert on.
    pub async fn wait_until(&self, sql: &str, want: i64) -> i64 {
        self.wait_until_within(sql, want, Duration::from_secs(60))
            .await
    }

    /// [`TestApp::wait_until`] with another deadline.
    pub async fn wait_until_within(&self, sql: &str, want: i64, limit: Duration) -> i64 {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.scalar(sql).await;
            if got == want || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Job workers run by the test (for an app started with `workers: 0`),
    /// polling every 50 ms until [`Workers::stop`].
    pub fn run_workers(&self, count: usize) -> Workers {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let handles = engine::worker::spawn(
            self.engine.clone(),
            engine::worker::WorkerConfig {
                count,
                poll_interval: Duration::from_millis(50),
                ..Default::default()
            },
            rx,
        );
        Workers { stop, handles }
    }

    /// Stops the server and drops the temporary database.
    pub async fn finish(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
        self.domain.db.clone().close().await;
        if let Some(pg) = self.pg.take() {
            pg.drop_now().await;
        }
    }
}

/// Job workers started by [`TestApp::run_workers`].
pub struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Asks the workers to stop and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

/// Runs one async test body against SQLite and against PostgreSQL, optionally
/// with non-default [`Options`] (evaluated once per backend).
///
/// ```ignore
/// both_backends!(lists_chatbots, async |app: &TestApp| { ... });
/// both_backends!(queued_jobs_wait, Options::no_workers(), async |app: &TestApp| { ... });
/// ```
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        $crate::both_backends!($name, $crate::Options::default(), $body);
    };
    ($name:ident, $options:expr, $body:expr) => {
        mod $name {
            #[allow(
                unused_imports,
                reason = "not every test body uses the enclosing module"
            )]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::TestApp::start_with($crate::Backend::Sqlite, $options)
                    .await
                    .unwrap();
                let body = $body;
                body(&app).await;
                app.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) =
                    $crate::TestApp::start_with($crate::Backend::Postgres, $options).await
                else {
                    return;
                };
                let body = $body;
                body(&app).await;
                app.finish().await;
            }
        }
    };
}
