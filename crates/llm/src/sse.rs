//! Incremental Server-Sent Events parsing (the WHATWG `text/event-stream`
//! format), enough for the providers' streaming APIs: `event:` and `data:`
//! fields, multi-line data, comments, any line ending, input split anywhere.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{Stream, StreamExt};

/// One dispatched event. `event` is empty when the server sent no `event:`
/// field (the spec's default type "message").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Push parser: feed bytes as they arrive, collect complete events.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// Bytes of the current, not yet terminated line. Kept as bytes so a UTF-8
    /// sequence split across chunks is decoded only once whole.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs
    /// to the same line ending.
    after_cr: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `chunk`, appending every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut VecDeque<SseEvent>) {
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.end_line(out);
                    self.after_cr = true;
                }
                _ => self.line.push(b),
            }
        }
    }

    /// End of input. The spec drops an unterminated event, but some servers
    /// omit the final blank line, so a pending event is dispatched instead.
    pub fn finish(&mut self, out: &mut VecDeque<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut VecDeque<SseEvent>) {
        let raw = std::mem::take(&mut self.line);
        let mut bytes = raw.as_slice();
        if !self.started {
            self.started = true;
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        if bytes.is_empty() {
            self.dispatch(out);
            return;
        }
        if bytes.first() == Some(&b':') {
            return;
        }
        let line = String::from_utf8_lossy(bytes);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` only matter to reconnecting browsers.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut VecDeque<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push_back(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        });
    }
}

/// Why reading the next event failed.
#[derive(Debug)]
pub(crate) enum ReadError<E> {
    /// No bytes arrived within the idle timeout.
    Idle,
    Body(E),
}

/// Events pulled from a byte stream (e.g. `reqwest::Response::bytes_stream`).
pub(crate) struct SseStream<S> {
    inner: S,
    parser: SseParser,
    queue: VecDeque<SseEvent>,
    eof: bool,
}

impl<S, B, E> SseStream<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            parser: SseParser::new(),
            queue: VecDeque::new(),
            eof: false,
        }
    }

    /// The next event, `Ok(None)` at the end of the body. `idle` bounds the
    /// wait for each chunk, so a server that keeps sending (pings included)
    /// never times out but one that goes silent does.
    pub async fn next_event(&mut self, idle: Duration) -> Result<Option<SseEvent>, ReadError<E>> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Ok(Some(ev));
            }
            if self.eof {
                return Ok(None);
            }
            match tokio::time::timeout(idle, self.inner.next()).await {
                Err(_) => return Err(ReadError::Idle),
                Ok(Some(Ok(chunk))) => self.parser.push(chunk.as_ref(), &mut self.queue),
                Ok(Some(Err(e))) => return Err(ReadError::Body(e)),
                Ok(None) => {
                    self.eof = true;
                    self.parser.finish(&mut self.queue);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = VecDeque::new();
        for c in chunks {
            p.push(c, &mut out);
        }
        p.finish(&mut out);
        out.into_iter().collect()
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn parses_event_and_data_fields() {
        let got = parse_chunks(&[b"event: message_start\ndata: {\"a\":1}\n\ndata: plain\n\n"]);
        assert_eq!(got, vec![ev("message_start", "{\"a\":1}"), ev("", "plain")]);
    }

    #[test]
    fn joins_multi_line_data_with_newlines() {
        let got = parse_chunks(&[b"data: one\ndata: two\ndata:three\n\n"]);
        assert_eq!(got, vec![ev("", "one\ntwo\nthree")]);
    }

    #[test]
    fn handles_crlf_and_lone_cr_line_endings() {
        let got = parse_chunks(&[b"event: a\r\ndata: x\r\n\r\nevent: b\rdata: y\r\r"]);
        assert_eq!(got, vec![ev("a", "x"), ev("b", "y")]);
    }

    #[test]
    fn same_events_whatever_the_chunk_boundaries() {
        let body: &[u8] =
            "event: e1\r\ndata: héllo\r\n\r\n: comment\r\ndata: {\"k\": \"v\"}\r\n\r\ndata: [DONE]\r\n\r\n"
                .as_bytes();
        let whole = parse_chunks(&[body]);
        assert_eq!(
            whole,
            vec![
                ev("e1", "héllo"),
                ev("", "{\"k\": \"v\"}"),
                ev("", "[DONE]")
            ]
        );
        for split in 1..body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(parse_chunks(&[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes), whole);
    }

    #[test]
    fn ignores_comments_unknown_fields_and_events_without_data() {
        let got = parse_chunks(&[b": ping\nid: 7\nretry: 100\nevent: ping\n\nevent: x\ndata\n\n"]);
        // A bare `data` line is a data field with an empty value.
        assert_eq!(got, vec![ev("x", "")]);
    }

    #[test]
    fn event_type_does_not_leak_into_the_next_event() {
        let got = parse_chunks(&[b"event: a\ndata: 1\n\ndata: 2\n\n"]);
        assert_eq!(got, vec![ev("a", "1"), ev("", "2")]);
    }

    #[test]
    fn strips_only_one_space_after_the_colon() {
        let got = parse_chunks(&[b"data:  two spaces\n\n"]);
        assert_eq!(got, vec![ev("", " two spaces")]);
    }

    #[test]
    fn dispatches_an_unterminated_final_event() {
        let got = parse_chunks(&[b"data: last"]);
        assert_eq!(got, vec![ev("", "last")]);
    }

    #[test]
    fn strips_a_leading_bom() {
        let got = parse_chunks(&[b"\xEF\xBB", b"\xBFdata: x\n\n"]);
        assert_eq!(got, vec![ev("", "x")]);
    }

    #[tokio::test]
    async fn stream_reads_events_then_none() {
        let chunks: Vec<Result<Vec<u8>, ()>> =
            vec![Ok(b"data: a\n".to_vec()), Ok(b"\ndata: b\n\n".to_vec())];
        let mut s = SseStream::new(futures_util::stream::iter(chunks));
        let idle = Duration::from_secs(5);
        assert_eq!(s.next_event(idle).await.ok().flatten(), Some(ev("", "a")));
        assert_eq!(s.next_event(idle).await.ok().flatten(), Some(ev("", "b")));
        assert!(matches!(s.next_event(idle).await, Ok(None)));
        assert!(matches!(s.next_event(idle).await, Ok(None)));
    }

    #[tokio::test]
    async fn stream_reports_body_errors_and_idle_timeouts() {
        let chunks: Vec<Result<Vec<u8>, &str>> = vec![Ok(b"data: a\n\n".to_vec()), Err("reset")];
        let mut s = SseStream::new(futures_util::stream::iter(chunks));
        let idle = Duration::from_secs(5);
        assert_eq!(s.next_event(idle).await.ok().flatten(), Some(ev("", "a")));
        assert!(matches!(
            s.next_event(idle).await,
            Err(ReadError::Body("reset"))
        ));

        let mut silent = SseStream::new(futures_util::stream::pending::<Result<Vec<u8>, ()>>());
        assert!(matches!(
            silent.next_event(Duration::from_millis(20)).await,
            Err(ReadError::Idle)
        ));
    }
}
