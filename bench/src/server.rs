//! The chatstudio process under test: building it, starting it on a loopback
//! port, reading its first-start banner, and reading its memory from /proc.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::http::{Client, Req};
use crate::procstat::proc_status_kib;

/// How long a start may take before we give up (migrations on an empty
/// PostgreSQL database are the slow part).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Where `cargo run -p bench` put us: `<target>/release/bench`, so the server
/// binary built into the same target dir sits next to it.
pub fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("unexpected bench path {}", exe.display()))
}

pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Builds the server in release mode into our own target dir, so the numbers
/// are for an optimised binary of the current sources.
pub async fn build(target: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "--bin", "chatstudio", "--target-dir"])
        .arg(target)
        .current_dir(workspace_dir())
        // Build output goes to stderr so stdout keeps only the table.
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .status()
        .await
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("building chatstudio failed ({status})");
    }
    let bin = target.join("release").join("chatstudio");
    if !bin.exists() {
        bail!("{} missing after the build", bin.display());
    }
    Ok(bin)
}

/// Where and against which database an instance (or a CLI command) runs.
#[derive(Debug, Clone)]
pub struct Instance {
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

impl Instance {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--data-dir").arg(&self.data_dir);
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        // The operator's own settings must not leak into the instance under test.
        for var in [
            "DATABASE_URL",
            "CHATSTUDIO_DATA_DIR",
            "CHATSTUDIO_FILES_URL",
            "CHATSTUDIO_DB_CONNECTIONS",
            "CHATSTUDIO_BIND",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        // The chat API's per-IP limit (600/5m by default) would turn a load
        // test from one loopback address into a test of the limiter.
        cmd.env("CHATSTUDIO_LOG", "warn")
            .env("CHATSTUDIO_RATE_LIMIT_LOG_ONLY", "true")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs an admin command to completion and returns its stdout.
    pub async fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
        let mut cmd = self.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .map_err(|_| anyhow!("chatstudio {} timed out", args.join(" ")))??;
        if !out.status.success() {
            bail!(
                "chatstudio {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A running server. Dropping it kills the process, so an error anywhere in
/// the bench never leaves one behind.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// What the first start printed (empty on later starts).
    pub banner: Vec<String>,
    /// From spawn to the first 200 on `/healthz`.
    pub started_in: Duration,
    /// Resident memory when `/healthz` first answered, in KiB.
    pub rss_at_start_kib: Option<u64>,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(l.local_addr()?.port())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Server {
    pub async fn start(inst: &Instance) -> Result<Server> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        std::fs::create_dir_all(&inst.data_dir)?;
        let log = inst.data_dir.join("server.log");
        let log_file = std::fs::File::create(&log)?;
        let mut cmd = inst.command();
        cmd.arg("serve")
            .arg("--bind")
            .arg(addr.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        let t0 = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", inst.bin.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the server exited at once"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from the server"))?;
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut banner = Vec::new();
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(tx) = tx.take_if(|_| line.starts_with("chatstudio listening on")) {
                    let _ = tx.send(std::mem::take(&mut banner));
                } else if tx.is_some() {
                    banner.push(line);
                }
                // After the banner, keep reading so the pipe never fills.
            }
        });
        let mut server = Server {
            child,
            pid,
            addr,
            banner: Vec::new(),
            started_in: Duration::ZERO,
            rss_at_start_kib: None,
            log,
        };
        let mut client = Client::new(addr).timeout(Duration::from_secs(2));
        let health = Req::get("/healthz");
        loop {
            if t0.elapsed() > START_TIMEOUT {
                bail!(
                    "the server did not become healthy in {START_TIMEOUT:?}:\n{}",
                    tail(&server.log)
                );
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("the server exited ({status}):\n{}", tail(&server.log));
            }
            if let Ok((status, _)) = client.send(&health).await
                && status.is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.started_in = t0.elapsed();
        server.rss_at_start_kib = proc_status_kib(pid, "VmRSS");
        server.banner = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .map_err(|_| anyhow!("the server never printed its listening line"))?
            .map_err(|_| anyhow!("the server closed stdout before listening"))?;
        Ok(server)
    }

    /// The read-write key the first start prints on the line after its label.
    pub fn api_key(&self) -> Result<String> {
        let label = self
            .banner
            .iter()
            .position(|l| l.starts_with("API key (read-write"))
            .ok_or_else(|| {
                anyhow!("no API key in the first-start banner (not a fresh database?)")
            })?;
        self.banner[label + 1..]
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the API key line is missing from the banner"))
    }

    /// The demo team owner's console sign-in, from the banner's `email:` and
    /// `password:` lines.
    pub fn console_login(&self) -> Result<(String, String)> {
        let field = |label: &str| {
            self.banner
                .iter()
                .find_map(|l| l.trim().strip_prefix(label))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow!("no console {label} line in the first-start banner"))
        };
        Ok((field("email:")?, field("password:")?))
    }

    /// The demo chatbot id from "created team `demo` with a demo chatbot (<uuid>)".
    pub fn demo_chatbot(&self) -> Result<uuid::Uuid> {
        let marker = "with a demo chatbot (";
        let line = self
            .banner
            .iter()
            .find(|l| l.contains(marker))
            .ok_or_else(|| anyhow!("no demo chatbot in the first-start banner"))?;
        let rest = &line[line.find(marker).unwrap_or(0) + marker.len()..];
        let id = rest.split(')').next().unwrap_or_default();
        uuid::Uuid::parse_str(id).with_context(|| format!("bad chatbot id in banner: {line}"))
    }

    /// Whether the process is still running, and if not the tail of its log:
    /// attached to any error so a crash under load is not a mystery.
    pub fn post_mortem(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!(
                "the server exited ({status}); its log ends:\n{}",
                tail(&self.log)
            )),
            Err(e) => Some(format!("cannot check the server: {e}")),
        }
    }

    /// Kills the process at once (it stays a value until dropped).
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
