//! Reading the rest of a body the server refused as too large.
//!
//! When an extractor stops at the body limit and the server answers `413`
//! while the client is still sending, hyper closes the connection with the
//! unread bytes still in flight: the client then sees a broken pipe instead
//! of the answer. Like nginx's lingering close, the server reads and discards
//! what remains (up to [`DRAIN_LIMIT`] bytes within [`DRAIN_TIME`]) before it
//! answers, so a client that sends too much learns why.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

/// Past this many discarded bytes the connection is closed after all.
pub const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
/// A client still sending after this long is cut off.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The request body, shared between the handler and this middleware so the
/// middleware can finish reading it once the handler has answered.
#[derive(Clone)]
struct Shared(Arc<Mutex<Body>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Body> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl HttpBody for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut *self.lock()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.lock().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.lock().size_hint()
    }
}

pub async fn drain_refused(req: Request, next: Next) -> Response {
    // A request without a body has nothing to drain: no wrapper on that path.
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let shared = Shared(Arc::new(Mutex::new(body)));
    let response = next
        .run(Request::from_parts(parts, Body::new(shared.clone())))
        .await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !shared.is_end_stream() {
        let _ = tokio::time::timeout(DRAIN_TIME, discard(shared)).await;
    }
    response
}

async fn discard(mut body: Shared) {
    let mut read = 0usize;
    while read <= DRAIN_LIMIT {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(Err(_)) | None => return,
        }
    }
}
