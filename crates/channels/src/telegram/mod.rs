//! The Telegram Bot API: webhook management and sending; the `Update`s
//! Telegram posts to the webhook are read in the `updates` module.
//!
//! Every call goes to `{api_base}/bot{token}/{method}` and answers
//! `{"ok": true, "result": …}` or
//! `{"ok": false, "error_code": N, "description": "…", "parameters": {…}}`.
//! The token is part of every URL, so error messages are built from reqwest
//! errors stripped of their URL and are redacted on top.

mod updates;

pub use updates::parse_updates;

use std::fmt;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::{Capabilities, Channel, ChannelError, Downloaded, Inbound, error_chain, truncate};

/// Where the official Bot API lives.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// Telegram's limit for one message's text, in UTF-16 code units.
pub const MAX_TEXT_LEN: usize = 4096;

/// The header Telegram sends on every webhook call with the secret given to
/// [`Telegram::set_webhook`].
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// How long one Bot API call may take unless [`Telegram::with_timeout`] says
/// otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The updates the webhook asks for; everything else is never delivered.
const ALLOWED_UPDATES: [&str; 2] = ["message", "edited_message"];

/// How long `send_text` waits out a rate limit between the parts of a split
/// message, and how often: the caller cannot retry the whole text without
/// repeating the parts already delivered.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(5);
const INLINE_ATTEMPTS: usize = 3;

/// A client for one bot.
#[derive(Clone)]
pub struct Telegram {
    api_base: String,
    token: String,
    http: reqwest::Client,
    timeout: Duration,
}

// Hand-written so the token never reaches a log through `{:?}`.
impl fmt::Debug for Telegram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telegram")
            .field("api_base", &self.api_base)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The bot's own account, as `getMe` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct BotInfo {
    pub id: i64,
    /// The bot's handle, without `@`.
    pub username: String,
    pub first_name: String,
}

impl Telegram {
    /// A client for the bot with `token`. A blank `api_base` means
    /// [`DEFAULT_API_BASE`]; tests point it at a local fake. The client
    /// should be the process-wide one (it must have a TLS provider).
    pub fn new(
        api_base: impl Into<String>,
        token: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            api_base: crate::base_url(api_base.into(), DEFAULT_API_BASE),
            token: token.into().trim().to_owned(),
            http,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Bounds each Bot API call, body included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// The bot's account; a cheap way to check the token.
    pub async fn get_me(&self) -> Result<BotInfo, ChannelError> {
        self.call("getMe", None).await
    }

    /// Makes Telegram post updates to `url`, with `secret_token` in the
    /// [`SECRET_HEADER`] header of each call (see [`new_secret_token`]).
    pub async fn set_webhook(&self, url: &str, secret_token: &str) -> Result<(), ChannelError> {
        let body = json!({
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": ALLOWED_UPDATES,
            "drop_pending_updates": false,
        });
        self.call::<Value>("setWebhook", Some(&body)).await?;
        Ok(())
    }

    /// Stops webhook delivery; updates not yet delivered stay queued.
    pub async fn delete_webhook(&self) -> Result<(), ChannelError> {
        let body = json!({"drop_pending_updates": false});
        self.call::<Value>("deleteWebhook", Some(&body)).await?;
        Ok(())
    }

    /// Sends one message of plain text (at most [`MAX_TEXT_LEN`] UTF-16
    /// units; see [`Channel::send_text`] for longer text) and returns its
    /// message id. No `parse_mode`: model output is not valid Telegram
    /// Markdown often enough, and a parse error would lose the reply.
    pub async fn send_message(&self, chat_id: &str, text: &str) -> Result<String, ChannelError> {
        #[derive(Deserialize)]
        struct Sent {
            message_id: i64,
        }
        let body = json!({"chat_id": chat_id_value(chat_id), "text": text});
        let sent: Sent = self.call("sendMessage", Some(&body)).await?;
        Ok(sent.message_id.to_string())
    }

    /// `send_message` for the second and later parts of a split text, waiting
    /// out short rate limits.
    async fn send_part(&self, chat_id: &str, text: &str) -> Result<String, ChannelError> {
        let mut attempt = 1;
        loop {
            match self.send_message(chat_id, text).await {
                Err(ChannelError::RateLimited { retry_after })
                    if attempt < INLINE_ATTEMPTS
                        && retry_after.is_none_or(|d| d <= MAX_INLINE_WAIT) =>
                {
                    let wait = retry_after.unwrap_or(Duration::from_secs(1));
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        attempt,
                        "telegram rate limit inside a split message; waiting"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Calls one Bot API method: a GET without `body`, else a JSON POST.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        body: Option<&Value>,
    ) -> Result<T, ChannelError> {
        let url = self.method_url(method)?;
        let req = match body {
            Some(body) => self.http.post(url).json(body),
            None => self.http.get(url),
        };
        self.answer(method, req).await
    }

    /// The URL of a Bot API method (the token checked first).
    fn method_url(&self, method: &str) -> Result<String, ChannelError> {
        self.check_token()?;
        Ok(format!("{}/bot{}/{method}", self.api_base, self.token))
    }

    /// Sends a prepared call and reads Telegram's answer.
    async fn answer<T: DeserializeOwned>(
        &self,
        method: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ChannelError> {
        let resp = req
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        let answer = match serde_json::from_slice::<ApiResponse>(&bytes) {
            Ok(answer) => answer,
            Err(err) if (200..300).contains(&status) => {
                return Err(ChannelError::Invalid(self.redact(&format!(
                    "Telegram answered {method} with malformed JSON: {err}"
                ))));
            }
            // Proxies and outages answer with HTML; the status still tells.
            Err(_) => ApiResponse {
                description: Some(truncate(String::from_utf8_lossy(&bytes).trim(), 200)),
                ..ApiResponse::default()
            },
        };
        if answer.ok && (200..300).contains(&status) {
            let result = answer.result.unwrap_or(Value::Null);
            return serde_json::from_value(result).map_err(|err| {
                ChannelError::Invalid(
                    self.redact(&format!("unexpected result from Telegram {method}: {err}")),
                )
            });
        }
        let code = answer
            .error_code
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(status);
        let retry_after = answer
            .parameters
            .and_then(|p| p.retry_after)
            .map(Duration::from_secs)
            .or_else(|| header_retry_after(&headers));
        let description = self.redact(answer.description.as_deref().unwrap_or("").trim());
        Err(classify(method, code, &description, retry_after))
    }

    fn check_token(&self) -> Result<(), ChannelError> {
        // The token is pasted into the URL path: anything outside its real
        // alphabet could change which URL is called.
        let token_ok = !self.token.is_empty()
            && self
                .token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
        if token_ok {
            Ok(())
        } else {
            Err(ChannelError::Config(
                "the Telegram bot token is malformed (expected digits, `:` and letters)".into(),
            ))
        }
    }

    /// A file a participant sent, by its `file_id`: `getFile`, then the
    /// file's download URL.
    pub async fn download(&self, file_id: &str) -> Result<Downloaded, ChannelError> {
        #[derive(Deserialize)]
        struct File {
            file_path: Option<String>,
        }
        let f: File = self
            .call("getFile", Some(&json!({"file_id": file_id})))
            .await?;
        let path = f
            .file_path
            .ok_or_else(|| ChannelError::Invalid("Telegram gave no path for the file".into()))?;
        if path.contains("..") {
            return Err(ChannelError::Invalid(
                "Telegram gave an unusable file path".into(),
            ));
        }
        let url = format!("{}/file/bot{}/{path}", self.api_base, self.token);
        let res = self
            .http
            .get(url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error("file download", e))?;
        crate::read_media(res, "the Telegram file").await
    }

    /// Sends Ogg Opus audio as a voice note; returns its message id.
    pub async fn send_voice(
        &self,
        chat_id: &str,
        audio: bytes::Bytes,
    ) -> Result<String, ChannelError> {
        #[derive(Deserialize)]
        struct Sent {
            message_id: i64,
        }
        let url = self.method_url("sendVoice")?;
        let part = reqwest::multipart::Part::stream(audio)
            .file_name("voice.ogg")
            .mime_str("audio/ogg")
            .map_err(|e| ChannelError::Invalid(format!("voice part: {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("chat_id", chat_id.to_string())
            .part("voice", part);
        let sent: Sent = self
            .answer("sendVoice", self.http.post(url).multipart(form))
            .await?;
        Ok(sent.message_id.to_string())
    }

    /// Sends a file: images as a photo, anything else as a document.
    pub async fn send_file(
        &self,
        chat_id: &str,
        bytes: bytes::Bytes,
        content_type: &str,
        file_name: &str,
    ) -> Result<String, ChannelError> {
        #[derive(Deserialize)]
        struct Sent {
            message_id: i64,
        }
        let (method, field) = if content_type.starts_with("image/") {
            ("sendPhoto", "photo")
        } else {
            ("sendDocument", "document")
        };
        let url = self.method_url(method)?;
        let part = reqwest::multipart::Part::stream(bytes)
            .file_name(file_name.to_string())
            .mime_str(content_type)
            .map_err(|e| ChannelError::Invalid(format!("file part: {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("chat_id", chat_id.to_string())
            .part(field, part);
        let sent: Sent = self
            .answer(method, self.http.post(url).multipart(form))
            .await?;
        Ok(sent.message_id.to_string())
    }

    /// A failure below HTTP. reqwest's messages quote the URL, and with it
    /// the token, so they are used only without it.
    fn transport_error(&self, method: &str, err: reqwest::Error) -> ChannelError {
        let (builder, connect, timeout) = (err.is_builder(), err.is_connect(), err.is_timeout());
        let detail = self.redact(&error_chain(&err.without_url()));
        if builder {
            ChannelError::Config(format!("cannot call Telegram {method}: {detail}"))
        } else if connect {
            ChannelError::Temporary(format!(
                "could not connect to Telegram at {}: {detail}",
                self.api_base
            ))
        } else if timeout {
            ChannelError::Temporary(format!(
                "Telegram did not answer {method} within {}ms",
                self.timeout.as_millis()
            ))
        } else {
            ChannelError::Temporary(format!("Telegram {method} failed: {detail}"))
        }
    }

    /// Removes the token, and its secret half on its own, from text that
    /// came from elsewhere.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let secret = self.token.split_once(':').map_or("", |(_, s)| s);
        // Very short strings would shred every message and cannot be real
        // tokens anyway.
        for needle in [self.token.as_str(), secret] {
            if needle.len() >= 4 {
                out = out.replace(needle, "<redacted>");
            }
        }
        out
    }
}

#[async_trait::async_trait]
impl Channel for Telegram {
    fn platform(&self) -> &'static str {
        "telegram"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            commands: true,
            ..Capabilities::plain_with_media(MAX_TEXT_LEN)
        }
    }

    fn parse_inbound(&self, body: &[u8]) -> Result<Vec<Inbound>, ChannelError> {
        parse_updates(body)
    }

    /// Splits with [`split_text`] at [`MAX_TEXT_LEN`] and sends the parts in
    /// order, skipping blank ones (Telegram rejects them). A short rate limit
    /// between parts is waited out here, because retrying the whole text
    /// would repeat the parts already delivered.
    async fn send_text(&self, chat_id: &str, text: &str) -> Result<Vec<String>, ChannelError> {
        let mut ids = Vec::new();
        for part in crate::parts(text, MAX_TEXT_LEN) {
            let id = if ids.is_empty() {
                self.send_message(chat_id, part).await?
            } else {
                self.send_part(chat_id, part).await?
            };
            ids.push(id);
        }
        Ok(ids)
    }
}

/// Maps a failed call to its class. `description` is already redacted.
fn classify(
    method: &str,
    code: u16,
    description: &str,
    retry_after: Option<Duration>,
) -> ChannelError {
    let said = |what: String| {
        if description.is_empty() {
            what
        } else {
            format!("{what}: {description}")
        }
    };
    let lower = description.to_ascii_lowercase();
    // Telegram answers 400, not 403, for a chat that does not exist (any
    // more).
    let gone = ["chat not found", "user not found", "peer_id_invalid"]
        .iter()
        .any(|s| lower.contains(s));
    match code {
        403 => ChannelError::Blocked(if description.is_empty() {
            "Forbidden".into()
        } else {
            description.to_owned()
        }),
        400 if gone => ChannelError::Blocked(description.to_owned()),
        429 => ChannelError::RateLimited { retry_after },
        401 | 404 => ChannelError::Config(said(format!(
            "Telegram rejected the bot token (HTTP {code} on {method})"
        ))),
        400..=499 => ChannelError::Config(said(format!("Telegram refused {method} (HTTP {code})"))),
        500..=599 => ChannelError::Temporary(said(format!(
            "Telegram server error on {method} (HTTP {code})"
        ))),
        _ => ChannelError::Invalid(said(format!(
            "Telegram answered {method} with unexpected HTTP {code}"
        ))),
    }
}

/// What every Bot API answer looks like.
#[derive(Debug, Default, Deserialize)]
struct ApiResponse {
    #[serde(default)]
    ok: bool,
    result: Option<Value>,
    error_code: Option<i64>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Debug, Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
}

fn header_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Numeric chat ids go as JSON numbers; `@channelname`s as strings.
fn chat_id_value(chat_id: &str) -> Value {
    match chat_id.trim().parse::<i64>() {
        Ok(id) => Value::from(id),
        Err(_) => Value::from(chat_id),
    }
}

/// Whether a webhook call carries the secret given to
/// [`Telegram::set_webhook`], `header` being the value of [`SECRET_HEADER`].
/// Compares in constant time (only the length can leak); an empty `expected`
/// accepts nothing.
pub fn verify_secret(expected: &str, header: Option<&str>) -> bool {
    match header {
        Some(got) if !expected.is_empty() => expected.as_bytes().ct_eq(got.as_bytes()).into(),
        _ => false,
    }
}

/// A fresh webhook secret: 48 random ASCII letters and digits (Telegram
/// allows 1–256 of `A-Za-z0-9_-`).
pub fn new_secret_token() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn redacts_the_token_and_its_secret_half() {
        let tg = Telegram::new("", "123456:ABCdef_ghi", chatstudio_llm::http::client());
        assert_eq!(tg.api_base(), DEFAULT_API_BASE);
        assert_eq!(
            tg.redact("url /bot123456:ABCdef_ghi/x and ABCdef_ghi"),
            "url /bot<redacted>/x and <redacted>"
        );
        assert!(!format!("{tg:?}").contains("ABCdef"));
    }

    #[test]
    fn classifies_codes() {
        let c = |code, d: &str| classify("sendMessage", code, d, None);
        assert!(matches!(
            c(403, "Forbidden: user is deactivated"),
            ChannelError::Blocked(_)
        ));
        assert!(matches!(
            c(400, "Bad Request: chat not found"),
            ChannelError::Blocked(_)
        ));
        assert!(matches!(
            c(400, "Bad Request: message text is empty"),
            ChannelError::Config(_)
        ));
        assert!(matches!(c(409, "Conflict"), ChannelError::Config(_)));
        assert!(matches!(c(404, "Not Found"), ChannelError::Config(_)));
        assert!(matches!(c(502, ""), ChannelError::Temporary(_)));
        assert!(matches!(c(302, ""), ChannelError::Invalid(_)));
    }

    #[test]
    fn chat_ids_are_numbers_when_they_can_be() {
        assert_eq!(
            chat_id_value("-1001234567890"),
            json!(-1_001_234_567_890_i64)
        );
        assert_eq!(chat_id_value("@mychannel"), json!("@mychannel"));
    }
}
