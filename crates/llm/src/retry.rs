//! The retry policy wrapped around every provider client.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::{Completion, CompletionRequest, CompletionStream, LlmClient, LlmError};

pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(250);
/// The longest computed backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// The longest wait granted to a provider's `Retry-After`: a caller is
/// waiting on the other end.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Retries [`LlmError::Retryable`] failures with exponential backoff;
/// configuration and response errors fail at once.
pub struct Retrying {
    inner: Arc<dyn LlmClient>,
    max_retries: u32,
    base_delay: Duration,
}

impl Retrying {
    pub fn new(inner: Arc<dyn LlmClient>, max_retries: u32) -> Self {
        Self {
            inner,
            max_retries,
            base_delay: DEFAULT_BASE_DELAY,
        }
    }

    /// Sets the first backoff step (tests use a few milliseconds).
    pub fn with_base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }

    /// The wait before retry number `retry` (0-based) after `err`: the
    /// provider's hint if it gave one, else `base × 2^retry` capped, with
    /// jitter in its upper half so clients that failed together spread out.
    pub fn delay(&self, retry: u32, err: &LlmError) -> Duration {
        if let LlmError::Retryable {
            retry_after: Some(d),
            ..
        } = err
        {
            return (*d).min(MAX_RETRY_AFTER);
        }
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(MAX_BACKOFF.max(self.base_delay));
        let half = exp / 2;
        half + half.mul_f64(random_unit())
    }

    async fn wait(&self, attempt: u32, err: &LlmError) {
        let delay = self.delay(attempt, err);
        tracing::warn!(
            error = %err,
            retry = attempt + 1,
            max_retries = self.max_retries,
            delay_ms = delay.as_millis() as u64,
            "LLM call failed; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// A value in [0, 1) from the std's randomly keyed hasher: enough for jitter
/// without a random-number dependency.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[async_trait::async_trait]
impl LlmClient for Retrying {
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, LlmError> {
        let mut attempt = 0;
        loop {
            match self.inner.complete(req).await {
                Err(e) if e.is_retryable() && attempt < self.max_retries => {
                    self.wait(attempt, &e).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Retries failures to start the stream, including a failure that is the
    /// stream's first item (e.g. Anthropic's `overloaded_error` event right
    /// after the response head). Once an item has been handed out, a failure
    /// is the caller's to handle.
    async fn stream(&self, req: &CompletionRequest) -> Result<CompletionStream, LlmError> {
        let mut attempt = 0;
        loop {
            let err = match self.inner.stream(req).await {
                Ok(mut stream) => match stream.next().await {
                    Some(Err(e)) if e.is_retryable() && attempt < self.max_retries => e,
                    Some(first) => {
                        return Ok(Box::pin(futures_util::stream::iter([first]).chain(stream)));
                    }
                    None => return Ok(stream),
                },
                Err(e) if e.is_retryable() && attempt < self.max_retries => e,
                Err(e) => return Err(e),
            };
            self.wait(attempt, &err).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StreamEvent, Usage};
    use std::sync::Mutex;

    /// Fails with the queued errors, then succeeds.
    struct Flaky {
        errors: Mutex<Vec<LlmError>>,
        calls: Mutex<u32>,
        fail_in_stream: bool,
    }

    impl Flaky {
        fn new(errors: Vec<LlmError>, fail_in_stream: bool) -> Arc<Self> {
            Arc::new(Self {
                errors: Mutex::new(errors),
                calls: Mutex::new(0),
                fail_in_stream,
            })
        }
        fn calls(&self) -> u32 {
            *self.calls.lock().unwrap()
        }
        fn next_error(&self) -> Option<LlmError> {
            *self.calls.lock().unwrap() += 1;
            let mut errors = self.errors.lock().unwrap();
            (!errors.is_empty()).then(|| errors.remove(0))
        }
    }

    fn done() -> Completion {
        Completion {
            text: "ok".into(),
            usage: Usage::default(),
            model: "m".into(),
            finish_reason: None,
            tool_calls: Vec::new(),
        }
    }

    #[async_trait::async_trait]
    impl LlmClient for Flaky {
        async fn complete(&self, _: &CompletionRequest) -> Result<Completion, LlmError> {
            match self.next_error() {
                Some(e) => Err(e),
                None => Ok(done()),
            }
        }
        async fn stream(&self, _: &CompletionRequest) -> Result<CompletionStream, LlmError> {
            let items = match self.next_error() {
                Some(e) if self.fail_in_stream => vec![Err(e)],
                Some(e) => return Err(e),
                None => vec![
                    Ok(StreamEvent::Delta("ok".into())),
                    Ok(StreamEvent::Done(done())),
                ],
            };
            Ok(Box::pin(futures_util::stream::iter(items)))
        }
    }

    fn retryable(after: Option<Duration>) -> LlmError {
        LlmError::Retryable {
            message: "busy".into(),
            status: Some(503),
            retry_after: after,
        }
    }

    fn config() -> LlmError {
        LlmError::Config {
            message: "bad key".into(),
            status: Some(401),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let r = Retrying::new(Flaky::new(vec![], false), 3);
        let e = retryable(None);
        for retry in 0..8 {
            let full = (DEFAULT_BASE_DELAY * 2u32.pow(retry)).min(MAX_BACKOFF);
            let d = r.delay(retry, &e);
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
        }
        assert!(r.delay(100, &e) <= MAX_BACKOFF);
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_cap() {
        let r = Retrying::new(Flaky::new(vec![], false), 3);
        assert_eq!(
            r.delay(0, &retryable(Some(Duration::from_secs(3)))),
            Duration::from_secs(3)
        );
        assert_eq!(r.delay(5, &retryable(Some(Duration::ZERO))), Duration::ZERO);
        assert_eq!(
            r.delay(0, &retryable(Some(Duration::from_secs(3600)))),
            MAX_RETRY_AFTER
        );
    }

    #[tokio::test]
    async fn complete_retries_retryable_errors_then_succeeds() {
        let inner = Flaky::new(vec![retryable(None), retryable(None)], false);
        let r = Retrying::new(inner.clone(), 2).with_base_delay(Duration::from_millis(1));
        assert_eq!(r.complete(&CompletionRequest::default()).await, Ok(done()));
        assert_eq!(inner.calls(), 3);
    }

    #[tokio::test]
    async fn complete_gives_up_after_max_retries() {
        let inner = Flaky::new(vec![retryable(None); 5], false);
        let r = Retrying::new(inner.clone(), 2).with_base_delay(Duration::from_millis(1));
        let err = r.complete(&CompletionRequest::default()).await.unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(inner.calls(), 3);
    }

    #[tokio::test]
    async fn config_errors_are_not_retried() {
        let inner = Flaky::new(vec![config()], false);
        let r = Retrying::new(inner.clone(), 5).with_base_delay(Duration::from_millis(1));
        assert_eq!(
            r.complete(&CompletionRequest::default()).await,
            Err(config())
        );
        assert_eq!(inner.calls(), 1);
    }

    #[tokio::test]
    async fn stream_retries_start_failures_and_first_item_failures() {
        for in_stream in [false, true] {
            let inner = Flaky::new(vec![retryable(None)], in_stream);
            let r = Retrying::new(inner.clone(), 1).with_base_delay(Duration::from_millis(1));
            let items: Vec<_> = r
                .stream(&CompletionRequest::default())
                .await
                .unwrap()
                .collect()
                .await;
            assert_eq!(
                items,
                vec![
                    Ok(StreamEvent::Delta("ok".into())),
                    Ok(StreamEvent::Done(done()))
                ]
            );
            assert_eq!(inner.calls(), 2);
        }
    }

    #[tokio::test]
    async fn stream_hands_out_a_first_item_error_once_retries_are_spent() {
        let inner = Flaky::new(vec![retryable(None); 3], true);
        let r = Retrying::new(inner.clone(), 1).with_base_delay(Duration::from_millis(1));
        let items: Vec<_> = r
            .stream(&CompletionRequest::default())
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(items, vec![Err(retryable(None))]);
        assert_eq!(inner.calls(), 2);

        let inner = Flaky::new(vec![config()], false);
        let r = Retrying::new(inner.clone(), 3);
        assert!(r.stream(&CompletionRequest::default()).await.is_err());
        assert_eq!(inner.calls(), 1);
    }
}
