//! The load generator: one HTTP/1.1 connection per worker (hyper's
//! connection-level client, no pool to hide queueing), closed loop, and the
//! probes read around each point (server RSS, statements per request).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::procstat::{proc_cpu_secs, proc_status_kib, reset_peak_rss};

/// No single operation may hang a point: past this it counts as an error.
pub const OP_TIMEOUT: Duration = Duration::from_secs(60);

/// A request to replay; cheap to clone (the body is shared).
#[derive(Debug, Clone)]
pub struct Req {
    method: Method,
    path: String,
    body: Bytes,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Self {
        Req {
            method: Method::GET,
            path: path.into(),
            body: Bytes::new(),
            headers: Vec::new(),
        }
    }

    pub fn post_json(path: impl Into<String>, body: &serde_json::Value) -> Self {
        Req {
            method: Method::POST,
            path: path.into(),
            body: Bytes::from(body.to_string()),
            headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        }
    }

    /// A form post as browsers encode it (`fields` already percent-encoded).
    pub fn post_form(path: impl Into<String>, fields: &str) -> Self {
        Req {
            method: Method::POST,
            path: path.into(),
            body: Bytes::from(fields.to_string()),
            headers: vec![(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )],
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Result<Self> {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_str(value).with_context(|| format!("bad {name} header"))?,
        ));
        Ok(self)
    }
}

/// One keep-alive connection to the server, reopened after any failure.
pub struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    conn: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Client {
            addr,
            host: HeaderValue::from_str(&addr.to_string())
                .unwrap_or(HeaderValue::from_static("127.0.0.1")),
            conn: None,
            timeout: OP_TIMEOUT,
        }
    }

    /// How long one request (connect to last body byte) may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    pub async fn send(&mut self, req: &Req) -> Result<(StatusCode, Bytes)> {
        let (status, _, body) = self.exchange(req).await?;
        Ok((status, body))
    }

    /// Like [`Client::send`], with the answer's headers (for cookies).
    pub async fn exchange(&mut self, req: &Req) -> Result<(StatusCode, HeaderMap, Bytes)> {
        let result = tokio::time::timeout(self.timeout, self.send_inner(req)).await;
        match result {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                bail!(
                    "{} {}: no answer in {:?}",
                    req.method,
                    req.path,
                    self.timeout
                )
            }
        }
    }

    async fn send_inner(&mut self, req: &Req) -> Result<(StatusCode, HeaderMap, Bytes)> {
        if self.conn.as_ref().is_none_or(SendRequest::is_closed) {
            self.conn = Some(Self::connect(self.addr).await?);
        }
        let sender = self.conn.as_mut().ok_or_else(|| anyhow!("no connection"))?;
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(req.path.as_str())
            .header(HOST, self.host.clone());
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let request = builder.body(Full::new(req.body.clone()))?;
        let result = async {
            sender.ready().await?;
            let resp = sender.send_request(request).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, headers, body))
        }
        .await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// Sends and insists on a 2xx, returning the body as JSON.
    pub async fn json(&mut self, req: &Req) -> Result<serde_json::Value> {
        let (status, body) = self.send(req).await?;
        if !status.is_success() {
            bail!(
                "{} {} answered {status}: {}",
                req.method,
                req.path,
                String::from_utf8_lossy(&body[..body.len().min(500)])
            );
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("{} {}: not JSON", req.method, req.path))
    }
}

pub type OpFuture<'a> = Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>>;

/// One unit of load: a request, a flow of requests, or a database transaction.
/// `Ok(true)` is a success, `Ok(false)` a non-2xx answer, `Err` a transport error.
pub trait Op: Send + Sync + 'static {
    type State: Send + 'static;
    fn state(&self, addr: Option<SocketAddr>) -> Self::State;
    fn call<'a>(&'a self, worker: usize, state: &'a mut Self::State) -> OpFuture<'a>;
}

/// A plain request replayed as fast as the server answers.
pub struct Replay(pub Req);

impl Op for Replay {
    type State = Option<Client>;

    fn state(&self, addr: Option<SocketAddr>) -> Self::State {
        addr.map(Client::new)
    }

    fn call<'a>(&'a self, _worker: usize, client: &'a mut Self::State) -> OpFuture<'a> {
        Box::pin(async move {
            let client = client
                .as_mut()
                .ok_or_else(|| anyhow!("no server address"))?;
            let (status, _) = client.send(&self.0).await?;
            Ok(status.is_success())
        })
    }
}

/// The process under load, for the probes.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub addr: SocketAddr,
    pub pid: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub duration: Duration,
}

#[derive(Debug, Default, Clone)]
pub struct Sample {
    pub concurrency: usize,
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Sorted, in microseconds, every operation started in the window.
    pub latencies_us: Vec<u64>,
    pub peak_rss_kib: Option<u64>,
    pub statements_per_request: Option<f64>,
    /// Server CPU over the window, in % of one core (200 = both cores busy).
    pub server_cpu_pct: Option<f64>,
    /// The burst was stopped because the server's memory passed the cap.
    pub capped: bool,
    /// Most file descriptors this process had open during a burst.
    pub bench_fds_peak: usize,
}

/// File descriptors open in this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

impl Sample {
    pub fn rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// The q-quantile (nearest rank), in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        Some(self.latencies_us[rank - 1] as f64 / 1000.0)
    }
}

/// Samples the server's RSS every 100 ms until stopped; the kernel's high-water
/// mark (reset at the start) catches peaks between samples. Also reads the
/// server's CPU time at both ends.
pub struct ServerSampler {
    pid: u32,
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    hwm_reset: bool,
    cpu_at_start: Option<(f64, Instant)>,
    task: tokio::task::JoinHandle<()>,
}

/// What the sampler saw: peak RSS in KiB and CPU in % of one core.
pub struct Seen {
    pub peak_rss_kib: Option<u64>,
    pub cpu_pct: Option<f64>,
}

impl ServerSampler {
    pub fn start(pid: u32) -> Self {
        let hwm_reset = reset_peak_rss(pid);
        let cpu_at_start = proc_cpu_secs(pid).map(|c| (c, Instant::now()));
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), max_kib.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(kib) = proc_status_kib(pid, "VmRSS") {
                    m.fetch_max(kib, Ordering::Relaxed);
                }
            }
        });
        ServerSampler {
            pid,
            stop,
            max_kib,
            hwm_reset,
            cpu_at_start,
            task,
        }
    }

    pub async fn finish(self) -> Seen {
        let cpu_pct = match (self.cpu_at_start, proc_cpu_secs(self.pid)) {
            (Some((c0, t0)), Some(c1)) => {
                let wall = t0.elapsed().as_secs_f64();
                (wall > 0.0).then(|| (c1 - c0) / wall * 100.0)
            }
            _ => None,
        };
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let mut peak = self.max_kib.load(Ordering::Relaxed);
        if self.hwm_reset
            && let Some(hwm) = proc_status_kib(self.pid, "VmHWM")
        {
            peak = peak.max(hwm);
        }
        if let Some(now) = proc_status_kib(self.pid, "VmRSS") {
            peak = peak.max(now);
        }
        Seen {
            peak_rss_kib: (peak > 0).then_some(peak),
            cpu_pct,
        }
    }
}

/// `(requests answered, SQL statements run)` from the server's `/metrics`.
pub async fn scrape(addr: SocketAddr) -> Result<(u64, u64)> {
    let mut c = Client::new(addr);
    let (status, body) = c.send(&Req::get("/metrics")).await?;
    if !status.is_success() {
        bail!("/metrics answered {status}");
    }
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .ok_or_else(|| anyhow!("{name} missing from /metrics"))
    };
    Ok((
        value("chatstudio_http_requests_total ")?,
        value("chatstudio_sql_statements_total ")?,
    ))
}

/// Statements per request between two scrapes; the second scrape counts
/// itself as a request (the first counted itself before reading).
pub fn per_request(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let requests = after.0.checked_sub(before.0)?.checked_sub(1)?;
    let statements = after.1.checked_sub(before.1)?;
    (requests > 0).then(|| statements as f64 / requests as f64)
}

/// Runs `concurrency` workers, each repeating `op` back to back for
/// warm-up + duration; only operations started after the warm-up count.
pub async fn closed_loop<O: Op>(
    op: Arc<O>,
    concurrency: usize,
    window: Window,
    probe: Option<Probe>,
) -> Result<Sample> {
    let measure_from = Instant::now() + window.warmup;
    let end = measure_from + window.duration;
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let op = op.clone();
        let addr = probe.map(|p| p.addr);
        workers.spawn(async move {
            let mut state = op.state(addr);
            let (mut lat, mut ok, mut errors) = (Vec::new(), 0u64, 0u64);
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let outcome = tokio::time::timeout(OP_TIMEOUT, op.call(worker, &mut state)).await;
                let took = started.elapsed();
                let success = matches!(outcome, Ok(Ok(true)));
                if started >= measure_from {
                    lat.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                    if success {
                        ok += 1;
                    } else {
                        errors += 1;
                    }
                }
                if !success {
                    // A refused connection or an instant error status comes back
                    // in microseconds: do not spin on it and starve the server.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (lat, ok, errors)
        });
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let before = match probe {
        Some(p) => Some(
            scrape(p.addr)
                .await
                .context("reading /metrics before the point")?,
        ),
        None => None,
    };
    let sampler = probe.map(|p| ServerSampler::start(p.pid));
    let mut sample = Sample {
        concurrency,
        ..Default::default()
    };
    while let Some(joined) = workers.join_next().await {
        let (lat, ok, errors) = joined.context("a load worker failed")?;
        sample.latencies_us.extend(lat);
        sample.ok += ok;
        sample.errors += errors;
    }
    sample.elapsed = measure_from.elapsed();
    if let Some(s) = sampler {
        let seen = s.finish().await;
        sample.peak_rss_kib = seen.peak_rss_kib;
        sample.server_cpu_pct = seen.cpu_pct;
    }
    if let (Some(p), Some(before)) = (probe, before) {
        let after = scrape(p.addr)
            .await
            .context("reading /metrics after the point")?;
        sample.statements_per_request = per_request(before, after);
    }
    sample.latencies_us.sort_unstable();
    Ok(sample)
}

/// Fires `n` requests at once, each on its own connection, and waits for all
/// of them (bounded by `limit`). Gives up early, counting what is left as
/// errors, if the server's RSS passes `rss_cap_kib`: a server that grows
/// without bound must not take the machine down with it.
pub async fn burst(
    req: Req,
    n: usize,
    probe: Probe,
    limit: Duration,
    rss_cap_kib: u64,
) -> Result<Sample> {
    let req = Arc::new(req);
    let sampler = ServerSampler::start(probe.pid);
    let before = scrape(probe.addr).await?;
    let gate = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let (req, gate) = (req.clone(), gate.clone());
        tasks.spawn(async move {
            gate.wait().await;
            let t0 = Instant::now();
            let mut client = Client::new(probe.addr).timeout(limit);
            let r = client.send(&req).await;
            let ok = matches!(r, Ok((s, _)) if s.is_success());
            (t0.elapsed(), ok)
        });
    }
    gate.wait().await;
    let t0 = Instant::now();
    let mut sample = Sample {
        concurrency: n,
        ..Default::default()
    };
    let mut watchdog = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { break };
                let (took, ok) = joined.context("a burst task failed")?;
                sample
                    .latencies_us
                    .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                if ok {
                    sample.ok += 1;
                } else {
                    sample.errors += 1;
                }
            }
            _ = watchdog.tick() => {
                sample.bench_fds_peak = sample.bench_fds_peak.max(open_fds());
                if proc_status_kib(probe.pid, "VmRSS").is_some_and(|k| k > rss_cap_kib) {
                    tasks.abort_all();
                    sample.errors = (n as u64).saturating_sub(sample.ok);
                    sample.capped = true;
                    break;
                }
            }
        }
    }
    sample.elapsed = t0.elapsed();
    let seen = sampler.finish().await;
    sample.peak_rss_kib = seen.peak_rss_kib;
    sample.server_cpu_pct = seen.cpu_pct;
    if !sample.capped {
        let after = scrape(probe.addr).await?;
        sample.statements_per_request = per_request(before, after);
    }
    sample.latencies_us.sort_unstable();
    Ok(sample)
}
