//! The HTTP server: hyper, with the limits a server facing the internet
//! needs, so a few thousand slow or idle sockets cannot exhaust it.
//!
//! - the request head (and, between requests on a kept-alive connection,
//!   the next one) must arrive within `header_timeout`, else the connection
//!   closes: idle sockets and half-sent headers do not stay open;
//! - a request body must keep up a minimum rate: after a grace of
//!   `body_timeout`, at least [`MIN_BODY_RATE`] bytes a second on average,
//!   else the body fails (a 400) — a drip-fed body cannot hold a handler,
//!   while a large upload on a slow line still gets through;
//! - at most `max_connections` connections are served at once; more wait in
//!   the listen backlog until one closes.
//!
//! Graceful shutdown stops accepting, lets requests in flight finish and
//! closes idle connections.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The slowest average body rate accepted once the grace is over.
pub const MIN_BODY_RATE: u64 = 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(10),
            max_connections: 1000,
        }
    }
}

/// Raises the open-files limit to its hard maximum (as Go's runtime does at
/// start) and returns the limit then in force (`None`: unlimited or unknown).
/// The usual soft default of 1024 would cap the turns in flight far below
/// what the server holds: each waits with its client's socket and, on a
/// provider without HTTP/2, one to the provider.
pub fn raise_open_files() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current != now.maximum {
        // Refused (a sandbox): the soft limit stays, and is what counts.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: now.maximum,
                maximum: now.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current
}

/// Connections served at once when none is configured: half the open files
/// (a turn waiting on a provider holds two sockets) less a reserve for the
/// database, logs and files; at least 64, at most 100,000.
pub fn auto_max_connections(open_files: Option<u64>) -> usize {
    let files = open_files.unwrap_or(200_000);
    let n = files.saturating_sub(256) / 2;
    usize::try_from(n.clamp(64, 100_000)).unwrap_or(100_000)
}

/// A request body that fails when it falls behind the minimum rate.
struct Paced<B> {
    inner: B,
    /// When the body falls behind, given what came so far.
    due: Pin<Box<Sleep>>,
    started: Instant,
    grace: Duration,
    received: u64,
}

impl<B> Paced<B> {
    fn new(inner: B, grace: Duration) -> Self {
        let started = Instant::now();
        Paced {
            inner,
            due: Box::pin(tokio::time::sleep_until(started + grace)),
            started,
            grace,
            received: 0,
        }
    }

    fn next_due(&self) -> Instant {
        self.started + self.grace + Duration::from_millis(self.received * 1000 / MIN_BODY_RATE)
    }
}

impl<B> Body for Paced<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let due = this.next_due();
                    this.due.as_mut().reset(due);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.due.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err("the request body arrived too slowly".into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only: protocol detection for HTTP/2 would wait on a silent
    // socket before any timeout applies (proxies speak HTTP/1.1 upstream).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let grace = limits.body_timeout;
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(ConnectInfo::<SocketAddr>(peer));
                let req = hyper::Request::from_parts(
                    parts,
                    axum::body::Body::new(Paced::new(body, grace)),
                );
                app.clone().oneshot(req)
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
