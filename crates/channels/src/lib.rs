//! Messaging-platform adapters behind one [`Channel`] trait: each adapter
//! turns a platform's webhook bodies into [`Inbound`] events and sends text
//! back, classifying every failure into [`ChannelError`]. Nothing here knows
//! about HTTP handlers or the database; the caller owns the HTTP client, the
//! webhook route and the bookkeeping (deduplication, retries, blocked users).

use std::time::Duration;

pub mod telegram;
pub mod twilio;
pub mod whatsapp_meta;
pub mod whatsapp_turn;
pub use telegram::Telegram;
pub use twilio::Twilio;
pub use whatsapp_meta::MetaCloud;
pub use whatsapp_turn::Turn;

/// One messaging platform (Telegram today; WhatsApp, Slack… later).
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// The platform's stable lowercase name, e.g. `"telegram"`.
    fn platform(&self) -> &'static str;

    /// What the platform, as this adapter drives it, can carry.
    fn capabilities(&self) -> Capabilities;

    /// Parses one inbound webhook body into zero or more events.
    ///
    /// Updates the bot has nothing to answer (button callbacks, membership
    /// changes…) yield no events; a body that cannot be read at all is
    /// [`ChannelError::Invalid`].
    fn parse_inbound(&self, body: &[u8]) -> Result<Vec<Inbound>, ChannelError>;

    /// Sends text to a chat, splitting it at the platform's limit; returns the
    /// platform message ids.
    ///
    /// Text that is empty or blank sends nothing and returns no ids. On an
    /// error, the parts before the failing one have already been delivered.
    async fn send_text(&self, chat_id: &str, text: &str) -> Result<Vec<String>, ChannelError>;
}

/// What a [`Channel`] can carry, so callers shape replies without knowing the
/// platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The longest text one message may hold, in UTF-16 code units (what
    /// Telegram counts; a `char` outside the BMP, like most emoji, takes two).
    /// [`Channel::send_text`] splits longer text itself; see [`utf16_len`].
    pub max_text_len: usize,
    /// Replies are rendered as Markdown. When false, markup shows literally,
    /// so callers may want to strip it.
    pub markdown: bool,
    /// Voice messages arrive as something other than
    /// [`InboundKind::Unsupported`].
    pub voice: bool,
    /// Files, photos and other media arrive as something other than
    /// [`InboundKind::Unsupported`].
    pub files: bool,
    /// Users can send `/command`s, reported as [`InboundKind::Command`].
    pub commands: bool,
}

impl Capabilities {
    /// Plain text up to `max_text_len`, voice notes and files, no commands:
    /// what every WhatsApp provider carries.
    pub const fn plain_with_media(max_text_len: usize) -> Self {
        Self {
            max_text_len,
            markdown: false,
            voice: true,
            files: true,
            commands: false,
        }
    }
}

/// One event from a platform that the bot may answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inbound {
    /// Unique per bot and platform: the key to drop webhook redeliveries.
    pub update_id: String,
    /// Where a reply goes (pass to [`Channel::send_text`]).
    pub chat_id: String,
    /// Who wrote; equals `chat_id` in private chats on Telegram.
    pub user_id: String,
    /// The sender's handle (without `@`) if they have one, else their
    /// display name; `None` when the platform tells neither.
    pub user_name: Option<String>,
    pub kind: InboundKind,
}

/// What an [`Inbound`] event carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum InboundKind {
    /// A plain text message.
    Text(String),
    /// A `/command`: its name, lowercased, without the `/`, a `@botname`
    /// suffix or arguments (`"/Start@MyBot x"` → `"start"`).
    Command(String),
    /// A file the participant sent: a voice note, audio, a photo, a
    /// document or a video, to be downloaded with the adapter.
    Media(Media),
    /// Something the bot does not handle yet, named for a polite reply or a
    /// metric: `"voice"`, `"audio"`, `"photo"`, `"video"`, `"video_note"`,
    /// `"animation"`, `"document"`, `"sticker"`, `"location"`, `"venue"`,
    /// `"contact"`, `"poll"`, `"dice"`, `"edited"` (an edit of an earlier
    /// message, which is never answered) or `"other"`.
    Unsupported(String),
}

/// A file in an inbound message, as the platform names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Media {
    pub kind: MediaKind,
    /// What the adapter downloads it by (a Telegram `file_id`, a WhatsApp
    /// media id, a Twilio media URL).
    pub reference: String,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    /// The text sent with it.
    pub caption: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Recorded in the app as a voice note: transcribed.
    Voice,
    Audio,
    Image,
    Document,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Voice => "voice",
            MediaKind::Audio => "audio",
            MediaKind::Image => "image",
            MediaKind::Document => "document",
            MediaKind::Video => "video",
        }
    }
}

/// Downloaded media: its bytes and the type the platform gave.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub bytes: bytes::Bytes,
    pub content_type: Option<String>,
}

/// The most media this process downloads from a platform (WhatsApp allows
/// 100 MB documents; anything bigger than this is refused, not buffered).
pub const MAX_MEDIA_BYTES: usize = 50 * 1024 * 1024;

/// Reads a download, refusing more than [`MAX_MEDIA_BYTES`].
pub(crate) async fn read_media(
    mut res: reqwest::Response,
    what: &str,
) -> Result<Downloaded, ChannelError> {
    let status = res.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(if status >= 500 || status == 429 {
            ChannelError::Temporary(format!("downloading {what} failed (HTTP {status})"))
        } else {
            ChannelError::Config(format!("downloading {what} was refused (HTTP {status})"))
        });
    }
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut buf = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| {
        ChannelError::Temporary(format!(
            "downloading {what}: {}",
            error_chain(&e.without_url())
        ))
    })? {
        if buf.len() + chunk.len() > MAX_MEDIA_BYTES {
            return Err(ChannelError::Invalid(format!(
                "{what} is larger than {} MB",
                MAX_MEDIA_BYTES / (1024 * 1024)
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Downloaded {
        bytes: buf.into(),
        content_type,
    })
}

/// What a platform client's failures may say: which API, where, within
/// what time, and the one secret they must never show.
pub(crate) struct Caller<'a> {
    /// The API as messages name it ("the Graph API", "Twilio").
    pub api: &'static str,
    pub api_base: &'a str,
    pub secret: &'a str,
    pub timeout: Duration,
}

impl Caller<'_> {
    /// `text` without the secret (a platform's message may quote it back).
    pub fn redact(&self, text: &str) -> String {
        if self.secret.len() >= 4 {
            text.replace(self.secret, "<redacted>")
        } else {
            text.to_owned()
        }
    }

    /// A platform's answer: its status and JSON body (a body that is not
    /// JSON, such as a proxy's error page, reads as `{"text": "…"}`).
    pub async fn answer(
        &self,
        res: reqwest::Response,
    ) -> Result<(u16, serde_json::Value), ChannelError> {
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|e| self.transport_error(e))?;
        let v = serde_json::from_slice(&bytes).unwrap_or_else(
            |_| serde_json::json!({"text": truncate(String::from_utf8_lossy(&bytes).trim(), 200)}),
        );
        Ok((status, v))
    }

    /// A failure below HTTP. reqwest's messages may quote the URL, so the
    /// chain is taken without it.
    pub fn transport_error(&self, err: reqwest::Error) -> ChannelError {
        let (builder, timeout) = (err.is_builder(), err.is_timeout());
        let detail = self.redact(&error_chain(&err.without_url()));
        let api = self.api;
        if builder {
            ChannelError::Config(format!("cannot call {api}: {detail}"))
        } else if timeout {
            ChannelError::Temporary(format!(
                "{api} did not answer within {}ms",
                self.timeout.as_millis()
            ))
        } else {
            ChannelError::Temporary(format!(
                "could not reach {api} at {}: {detail}",
                self.api_base
            ))
        }
    }
}

/// The parts a text is sent in: split at the platform's limit, blank ones
/// left out (see [`split_text`]).
pub(crate) fn parts(text: &str, max_units: usize) -> impl Iterator<Item = &str> {
    split_text(text, max_units)
        .into_iter()
        .filter(|p| !p.trim().is_empty())
}

/// HMAC-SHA256 of `body` keyed with `secret` (how Meta and Turn sign
/// webhooks).
pub(crate) fn hmac_sha256(secret: &str, body: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Whether `given` is the HMAC-SHA256 of `body` with `secret`, compared in
/// constant time; an empty secret accepts nothing.
pub(crate) fn hmac_sha256_matches(secret: &str, body: &[u8], given: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    if secret.is_empty() {
        return false;
    }
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(given).is_ok()
}

/// `what`, with the platform's own words after it when it gave any.
pub(crate) fn said(what: &str, message: &str) -> String {
    if message.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {message}")
    }
}

/// Sends `text` in the non-blank parts of at most `max_units` with `send`,
/// one after the other: the ids of the messages sent.
pub(crate) async fn send_parts<'t, Sent>(
    text: &'t str,
    max_units: usize,
    mut send: impl FnMut(&'t str) -> Sent,
) -> Result<Vec<String>, ChannelError>
where
    Sent: Future<Output = Result<String, ChannelError>>,
{
    let mut ids = Vec::new();
    for part in parts(text, max_units) {
        ids.push(send(part).await?);
    }
    Ok(ids)
}

/// What a provider's HTTP `status` means when its error body named no code
/// of its own: `auth_refused` for 401 and 403, `api`'s server error for 5xx,
/// `refuser` refusing the message for the rest.
pub(crate) fn status_error(
    status: u16,
    message: &str,
    auth_refused: &str,
    api: &str,
    refuser: &str,
) -> ChannelError {
    match status {
        429 => ChannelError::RateLimited { retry_after: None },
        401 | 403 => ChannelError::Config(said(auth_refused, message)),
        500..=599 => {
            ChannelError::Temporary(said(&format!("{api} error (HTTP {status})"), message))
        }
        _ => ChannelError::Config(said(
            &format!("{refuser} refused the message (HTTP {status})"),
            message,
        )),
    }
}

/// How a platform call failed, classified so callers know whether to retry,
/// back off, stop writing to a chat, or alert an operator. Messages never
/// contain the bot's credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The chat cannot be written to: the user blocked the bot, the chat does
    /// not exist, or the bot was removed from it. Never retry; the string is
    /// the platform's reason.
    #[error("the chat cannot be reached: {0}")]
    Blocked(String),
    /// The platform will only carry an approved template to this chat now
    /// (WhatsApp: the participant last wrote more than 24 hours ago).
    #[error("the chat needs a template message: {0}")]
    ReengagementRequired(String),
    /// The platform asked to slow down; wait `retry_after` when it said how
    /// long.
    #[error("rate limited by the platform{}", fmt_wait(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// Worth retrying: server errors, timeouts, broken connections.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Retrying cannot help until someone fixes the setup: a rejected bot
    /// token, a request the platform refuses.
    #[error("channel configuration error: {0}")]
    Config(String),
    /// Data we cannot read: an unparseable webhook body or platform answer.
    #[error("invalid data: {0}")]
    Invalid(String),
}

impl ChannelError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Temporary(_))
    }

    /// The platform's requested wait, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

fn fmt_wait(wait: &Option<Duration>) -> String {
    match wait {
        Some(d) => format!(" (retry after {}s)", d.as_secs_f64()),
        None => String::new(),
    }
}

/// Splits `text` into chunks of at most `max_units` UTF-16 code units each,
/// cutting only at `char` boundaries.
///
/// The rule, applied repeatedly to what is left:
/// - if the rest fits, it is the last chunk;
/// - otherwise the cut goes at the last `'\n'` whose preceding text fits (the
///   newline may be the first character that no longer fits), and that
///   newline is dropped;
/// - failing that, at the last `' '` found the same way, also dropped;
/// - failing that, right after the longest prefix that fits (nothing dropped).
///
/// A separator at the very start of the rest is never a cut, so chunks are
/// never empty. Hence the chunks, joined with the single dropped separator at
/// each boundary where one was dropped, give back `text` exactly. An empty
/// `text` gives no chunks. A `max_units` below 2 counts as 2, so that a
/// character outside the Basic Multilingual Plane always fits.
pub fn split_text(text: &str, max_units: usize) -> Vec<&str> {
    let limit = max_units.max(2);
    let mut chunks = Vec::new();
    let mut rest = text;
    while let Some((end, next)) = cut(rest, limit) {
        chunks.push(&rest[..end]);
        rest = &rest[next..];
    }
    if !rest.is_empty() {
        chunks.push(rest);
    }
    chunks
}

/// Where to cut `rest`: the chunk's end and where the next chunk starts, or
/// `None` when all of it fits.
fn cut(rest: &str, limit: usize) -> Option<(usize, usize)> {
    let mut units = 0;
    let mut newline = None;
    let mut space = None;
    for (i, c) in rest.char_indices() {
        // Noted before the fit check: a separator that itself does not fit is
        // still a cut point, since it is dropped.
        if i > 0 {
            match c {
                '\n' => newline = Some(i),
                ' ' => space = Some(i),
                _ => {}
            }
        }
        let width = c.len_utf16();
        if units + width > limit {
            return Some(match newline.or(space) {
                Some(at) => (at, at + 1),
                None => (i, i),
            });
        }
        units += width;
    }
    None
}

/// A platform's base URL without its trailing `/`; blank means `default`
/// (tests point adapters at local fakes).
pub(crate) fn base_url(given: String, default: &str) -> String {
    match given.trim().trim_end_matches('/') {
        "" => default.to_owned(),
        base => base.to_owned(),
    }
}

/// An error and its causes, each said once.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper and reqwest often repeat the cause in their own message.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// `s` cut to `max_chars` characters, marked when cut.
pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The length of `s` in UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {

    use super::*;

    /// A reference implementation of the documented rule, written differently
    /// (over a `Vec<char>`) to cross-check `split_text`.
    fn expected_cut(rest: &[char], limit: usize) -> Option<(usize, usize)> {
        let mut fit = 0;
        let mut units = 0;
        while fit < rest.len() && units + rest[fit].len_utf16() <= limit {
            units += rest[fit].len_utf16();
            fit += 1;
        }
        if fit == rest.len() {
            return None;
        }
        let last = |sep: char| (1..=fit).rev().find(|&j| rest[j] == sep);
        Some(match last('\n').or_else(|| last(' ')) {
            Some(j) => (j, j + 1),
            None => (fit, fit),
        })
    }

    /// Checks every property of the documented rule for one input.
    fn check(text: &str, max_units: usize) {
        let limit = max_units.max(2);
        let chunks = split_text(text, max_units);
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        for (n, chunk) in chunks.iter().enumerate() {
            assert!(!chunk.is_empty(), "empty chunk {n} for limit {limit}");
            assert!(
                utf16_len(chunk) <= limit,
                "chunk {n} has {} units > {limit}",
                utf16_len(chunk)
            );
            let len = chunk.chars().count();
            assert_eq!(
                &chars[pos..pos + len],
                chunk.chars().collect::<Vec<_>>().as_slice(),
                "chunk {n} is not the next part of the input"
            );
            match expected_cut(&chars[pos..], limit) {
                Some((end, next)) => {
                    assert_eq!(len, end, "chunk {n} ends at the wrong place");
                    pos += next;
                }
                None => {
                    assert_eq!(n, chunks.len() - 1, "chunks after a fitting rest");
                    pos += len;
                }
            }
        }
        assert_eq!(pos, chars.len(), "the chunks do not cover the input");
    }

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % below as u64) as usize
        }
    }

    const ALPHABET: [char; 9] = ['a', 'b', 'é', '中', '😀', '𝄞', ' ', '\n', '\t'];

    #[test]
    fn generated_inputs_follow_the_rule() {
        let mut rng = Lcg(42);
        for round in 0..400 {
            let len = rng.next(if round % 10 == 0 { 12_000 } else { 300 });
            // Some rounds have no separators at all, forcing hard cuts.
            let alphabet = if round % 4 == 0 {
                &ALPHABET[..6]
            } else {
                &ALPHABET[..]
            };
            let text: String = (0..len)
                .map(|_| alphabet[rng.next(alphabet.len())])
                .collect();
            for limit in [0, 1, 2, 3, 5, 16, 100, 4096] {
                check(&text, limit);
            }
        }
    }

    #[test]
    fn emoji_only_text_is_cut_between_surrogate_pairs() {
        let text = "😀".repeat(3000);
        let chunks = split_text(&text, 4096);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].chars().count(), 2048);
        assert_eq!(utf16_len(chunks[0]), 4096);
        assert_eq!(chunks[1].chars().count(), 952);
        // An odd limit cannot take half a pair.
        for chunk in split_text(&text, 5) {
            assert_eq!(utf16_len(chunk), 4);
        }
        check(&text, 4096);
        check(&format!("a{text}"), 4096);
    }

    #[test]
    fn prefers_newlines_then_spaces_then_hard_cuts() {
        assert_eq!(split_text("aaa bbb\nccc ddd", 12), ["aaa bbb", "ccc ddd"]);
        assert_eq!(split_text("aaa bbb ccc", 8), ["aaa bbb", "ccc"]);
        assert_eq!(split_text("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        // A separator right after a full chunk is the cut, and is dropped.
        assert_eq!(split_text("abcd\nefgh", 4), ["abcd", "efgh"]);
        assert_eq!(split_text("abcd efgh", 4), ["abcd", "efgh"]);
        // A leading separator is kept, not cut at.
        assert_eq!(split_text("\nabcdef", 4), ["\nabc", "def"]);
        // Only one separator goes per cut.
        assert_eq!(split_text("ab\n\ncd", 4), ["ab\n", "cd"]);
        // A trailing separator that is the cut leaves nothing behind.
        assert_eq!(split_text("abcd\n", 4), ["abcd"]);
    }

    #[test]
    fn short_and_empty_text() {
        assert!(split_text("", 4096).is_empty());
        assert_eq!(split_text("hello", 4096), ["hello"]);
        let exact = "x".repeat(4096);
        assert_eq!(split_text(&exact, 4096), [exact.as_str()]);
        // A non-BMP character still fits when the limit is nonsense.
        assert_eq!(split_text("😀😀", 0), ["😀", "😀"]);
    }

    #[test]
    fn errors_classify_for_retries() {
        let limited = ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(
            limited.to_string(),
            "rate limited by the platform (retry after 3s)"
        );
        assert!(ChannelError::Temporary("x".into()).is_retryable());
        assert!(!ChannelError::Blocked("x".into()).is_retryable());
        assert!(!ChannelError::Config("x".into()).is_retryable());
        assert!(!ChannelError::Invalid("x".into()).is_retryable());
    }

    #[test]
    fn inbound_kind_serializes_with_a_tag() {
        let json = serde_json::to_value(InboundKind::Command("reset".into())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "command", "value": "reset"})
        );
    }
}
