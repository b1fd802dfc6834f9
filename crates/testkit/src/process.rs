//! The `chatstudio` binary as a child process, on a test database.
//!
//! The caller says where the binary is: integration tests of the `server`
//! package pass `env!("CARGO_BIN_EXE_chatstudio")`. A [`Binary`] runs either on
//! the database of a [`TestApp`] (the test then checks the database through the
//! app) or on a fresh one of its own ([`Binary::fresh`]), dropped with it.
//!
//! ```ignore
//! let bin = Binary::new(env!("CARGO_BIN_EXE_chatstudio"), &app);
//! let out = bin.ok(&["team", "create", "acme"]);            // one CLI command
//! let server = bin.serve(&[]).await;                         // `serve` on a free port, /healthz answered
//! let server = server.restart().await;                       // SIGKILL, then again on the same database
//! let worker = bin.spawn(&["worker", "--workers", "2"]);     // killed on drop
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{Backend, TestApp, pg};

/// How long `serve` may take to print its address (migrations included).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary and the database it runs on.
pub struct Binary {
    path: PathBuf,
    data_dir: PathBuf,
    db_url: Option<String>,
    /// Numbers the stderr logs of launched processes.
    launches: AtomicUsize,
    /// A fresh database owned by this binary (none when it runs on an app's).
    _fresh: Option<Fresh>,
}

/// Dropped in this order: the PostgreSQL database, then the directory.
struct Fresh {
    _pg: Option<pg::TempDatabase>,
    _dir: TempDir,
}

impl Binary {
    /// The binary at `path` on `app`'s database (its data dir and, on
    /// PostgreSQL, its URL).
    pub fn new(path: impl Into<PathBuf>, app: &TestApp) -> Self {
        Self {
            path: path.into(),
            data_dir: app.data_dir.path().to_path_buf(),
            db_url: app.db_url.clone(),
            launches: AtomicUsize::new(0),
            _fresh: None,
        }
    }

    /// The binary at `path` on a fresh database: an empty SQLite data dir, or
    /// an empty PostgreSQL database (`None` when PostgreSQL is not configured
    /// outside CI, as [`TestApp::start`]). Both go when the binary is dropped.
    pub async fn fresh(path: impl Into<PathBuf>, backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(pg::TempDatabase::create().await?),
        };
        Some(Self {
            path: path.into(),
            data_dir: dir.path().to_path_buf(),
            db_url: pg.as_ref().map(|p| p.url.clone()),
            launches: AtomicUsize::new(0),
            _fresh: Some(Fresh { _pg: pg, _dir: dir }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn db_url(&self) -> Option<&str> {
        self.db_url.as_deref()
    }

    /// `chatstudio --data-dir … [--database-url …] ARGS`, with no
    /// `CHATSTUDIO_*` or `DATABASE_URL` from the test's environment and warn-level logs.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        for (name, _) in std::env::vars_os() {
            if name == "DATABASE_URL" || name.to_string_lossy().starts_with("CHATSTUDIO_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("CHATSTUDIO_LOG", "warn");
        cmd.arg("--data-dir").arg(&self.data_dir);
        if let Some(url) = &self.db_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.args(args);
        cmd
    }

    /// Runs one command to its end: (exit success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        self.run_with_env(&[], args)
    }

    /// [`Binary::run`] with extra environment variables.
    pub fn run_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs one command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (success, out, err) = self.run(args);
        assert!(success, "chatstudio {args:?} failed: {err}");
        out
    }

    /// `chatbot apply --team TEAM --file FILE` after writing `text` to `FILE`
    /// in the data dir, with extra environment variables: (exit success,
    /// stdout, stderr).
    pub fn apply_with_env(
        &self,
        env: &[(&str, &str)],
        team: &str,
        file: &str,
        text: &str,
    ) -> (bool, String, String) {
        let path = self.data_dir.join(file);
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();
        self.run_with_env(env, &["chatbot", "apply", "--team", team, "--file", path])
    }

    /// [`Binary::apply_with_env`] with the test's environment.
    pub fn apply(&self, team: &str, file: &str, text: &str) -> (bool, String, String) {
        self.apply_with_env(&[], team, file, text)
    }

    /// [`Binary::apply`] that must succeed; returns its stdout.
    pub fn apply_ok(&self, team: &str, file: &str, text: &str) -> String {
        let (success, out, err) = self.apply(team, file, text);
        assert!(success, "chatstudio chatbot apply {file} failed: {err}");
        out
    }

    /// Starts a long-running command (e.g. `worker`); it is killed on drop.
    pub fn spawn(&self, args: &[&str]) -> Launched<'_> {
        let (child, log) = self.start(args, Stdio::null());
        Launched::new(self, args, child, log)
    }

    /// Starts `chatstudio serve --bind 127.0.0.1:0 ARGS`, reads the address it
    /// prints (and the first-start banner before it), and waits until
    /// `/healthz` answers 200.
    pub async fn serve(&self, args: &[&str]) -> Launched<'_> {
        let mut all = vec!["serve", "--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let (mut child, log) = self.start(&all, Stdio::piped());
        let stdout = child.stdout.take().unwrap();
        let mut launched = Launched::new(self, args, child, log);
        // Read on a thread until "listening on"; it drains the rest so the child never blocks on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Once nobody listens, lines are dropped.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        while launched.addr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.split("listening on http://").nth(1) {
                        launched.addr = Some(addr.trim().parse().unwrap());
                    }
                    launched.output.push(line);
                }
                Err(_) => panic!(
                    "chatstudio serve printed no address within {READY_TIMEOUT:?}\nstdout: {:#?}\nstderr: {}",
                    launched.output,
                    launched.stderr()
                ),
            }
        }
        launched.wait_healthy(deadline).await;
        launched
    }

    fn start(&self, args: &[&str], stdout: Stdio) -> (Child, PathBuf) {
        let n = self.launches.fetch_add(1, Ordering::Relaxed);
        let log = self.data_dir.join(format!("chatstudio-{n}.stderr.log"));
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.path.display()));
        (child, log)
    }
}

/// A running child process: killed (SIGKILL) and reaped on drop.
pub struct Launched<'b> {
    binary: &'b Binary,
    /// The arguments after the subcommand's own (for `serve`: after `--bind`).
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
    /// What `serve` printed up to and including its "listening on" line.
    pub output: Vec<String>,
    /// Where `serve` listens (`None` for other commands).
    pub addr: Option<SocketAddr>,
}

impl<'b> Launched<'b> {
    fn new(binary: &'b Binary, args: &[&str], child: Child, log: PathBuf) -> Self {
        Launched {
            binary,
            args: args.iter().map(|a| (*a).to_string()).collect(),
            child: Some(child),
            log,
            output: Vec::new(),
            addr: None,
        }
    }

    /// `http://ADDR` of a server.
    pub fn base(&self) -> String {
        let addr = self.addr.expect("only `serve` has an address");
        format!("http://{addr}")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// The read-write API key of the first-start banner (printed on an empty database).
    pub fn api_key(&self) -> Option<String> {
        self.output
            .iter()
            .skip_while(|l| !l.contains("API key"))
            .nth(2)
            .map(|l| l.trim().to_string())
    }

    /// The console sign-in (email, password) from the first-start banner.
    pub fn console_login(&self) -> Option<(String, String)> {
        let field = |name: &str| {
            self.output
                .iter()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
        };
        Some((field("email:")?, field("password:")?))
    }

    /// The demo chatbot's id from the first-start banner.
    pub fn demo_chatbot(&self) -> Option<String> {
        let line = self.output.iter().find(|l| l.contains("demo chatbot ("))?;
        let id = line.split("demo chatbot (").nth(1)?.split(')').next()?;
        Some(id.to_string())
    }

    /// The process's resident memory, in KiB (Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the process and starts the same command again on the same
    /// database (a server gets a new port: read `addr` again).
    pub async fn restart(mut self) -> Launched<'b> {
        self.kill();
        let binary = self.binary;
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        if self.addr.is_some() {
            binary.serve(&args).await
        } else {
            binary.spawn(&args)
        }
    }

    async fn wait_healthy(&mut self, deadline: Instant) {
        llm::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let url = self.url("/healthz");
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("chatstudio serve exited ({status}): {}", self.stderr());
            }
            match client.get(&url).send().await {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{url} did not answer 200 within {READY_TIMEOUT:?} ({last}): {}",
            self.stderr()
        );
    }
}

impl Drop for Launched<'_> {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a command to its end off the async runtime's threads (a tool that
/// talks to the in-process server, e.g. a Python client).
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || {
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()))
    })
    .await
    .unwrap()
}

/// Code nodes running in workers of `binary` (tests of the `chatstudio`
/// package pass `env!("CARGO_BIN_EXE_chatstudio")`).
pub fn code_workers(binary: &str, workers: usize) -> engine::CodeSettings {
    engine::CodeSettings {
        worker: Some(engine::sandbox::WorkerCommand {
            program: binary.into(),
            args: vec!["sandbox-worker".into()],
        }),
        workers,
        maximum: engine::sandbox::Limits::maximum(),
    }
}

/// Whether `python3` can import `modules` (comma separated, as Python's
/// `import` takes them). A client library a test drives is skipped where it
/// is not installed, except in CI, which installs it (`.ci/run`): there its
/// absence fails the test.
pub fn python_has(modules: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI must have the Python modules {modules} (.ci/run installs them)"
        );
        eprintln!("skipping: python3 cannot import {modules}");
    }
    ok
}
