//! Turning a provider's SSE response into a [`CompletionStream`]: the
//! [`Decoder`] of each wire format, driven with an idle timeout per chunk.

use super::{Ctx, display_url};
use crate::sse::{ReadError, SseEvent, SseStream};
use crate::{Completion, CompletionStream, LlmError, StreamEvent, Usage};

/// Starts a streamed call. `ctx.timeout` bounds the wait for the response
/// head here, and each wait for a chunk afterwards.
pub(crate) async fn send_stream<D: Decoder>(
    ctx: Ctx,
    req: reqwest::RequestBuilder,
    decoder: D,
) -> Result<CompletionStream, LlmError> {
    let resp = tokio::time::timeout(ctx.timeout, req.send())
        .await
        .map_err(|_| ctx.timed_out())?
        .map_err(|e| ctx.transport_error(e))?;
    let status = resp.status();
    if !status.is_success() {
        let headers = resp.headers().clone();
        let url = display_url(resp.url());
        let body = match tokio::time::timeout(ctx.timeout, resp.bytes()).await {
            Ok(Ok(b)) => b.to_vec(),
            _ => Vec::new(),
        };
        return Err(ctx.status_error(status.as_u16(), &headers, &body, &url));
    }
    let driver = Driver {
        sse: SseStream::new(Box::pin(resp.bytes_stream())),
        decoder,
        ctx,
        text: String::new(),
        finished: false,
    };
    Ok(Box::pin(futures_util::stream::unfold(
        driver,
        |mut d| async move {
            if d.finished {
                return None;
            }
            let item = d.next_item().await;
            d.finished = !matches!(item, Ok(StreamEvent::Delta(_)));
            Some((item, d))
        },
    )))
}

/// What one provider's stream event means.
pub(crate) enum Step {
    /// A piece of the reply (may be empty).
    Text(String),
    /// Nothing for the caller (pings, block starts, usage updates).
    Skip,
    /// The provider's explicit end of stream.
    End,
}

/// The final facts of a stream, gathered by a [`Decoder`].
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub usage: Usage,
    pub model: Option<String>,
    pub finish_reason: Option<String>,
    /// Tool calls assembled from the stream.
    pub tool_calls: Vec<crate::ToolCall>,
}

/// A provider's streaming wire format.
pub(crate) trait Decoder: Send + 'static {
    fn event(&mut self, ev: SseEvent) -> Result<Step, LlmError>;
    /// The body ended without an `End` step: `Ok` if that is a normal end
    /// for this provider.
    fn eof(&mut self) -> Result<(), LlmError>;
    fn summary(&mut self) -> Summary;
}

struct Driver<S, D> {
    sse: SseStream<S>,
    decoder: D,
    ctx: Ctx,
    text: String,
    finished: bool,
}

impl<S, B, D> Driver<S, D>
where
    S: futures_util::Stream<Item = Result<B, reqwest::Error>> + Unpin,
    B: AsRef<[u8]>,
    D: Decoder,
{
    async fn next_item(&mut self) -> Result<StreamEvent, LlmError> {
        loop {
            let ev = match self.sse.next_event(self.ctx.timeout).await {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    self.decoder.eof()?;
                    return Ok(self.done());
                }
                Err(ReadError::Idle) => return Err(self.ctx.idle_timeout()),
                Err(ReadError::Body(e)) => return Err(self.ctx.transport_error(e)),
            };
            match self.decoder.event(ev)? {
                Step::Text(t) if !t.is_empty() => {
                    self.text.push_str(&t);
                    return Ok(StreamEvent::Delta(t));
                }
                Step::Text(_) | Step::Skip => {}
                Step::End => return Ok(self.done()),
            }
        }
    }

    fn done(&mut self) -> StreamEvent {
        let s = self.decoder.summary();
        StreamEvent::Done(Completion {
            text: std::mem::take(&mut self.text),
            usage: s.usage,
            model: s.model.unwrap_or_else(|| self.ctx.model.clone()),
            finish_reason: s.finish_reason,
            tool_calls: s.tool_calls,
        })
    }
}
