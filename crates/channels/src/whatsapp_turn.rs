//! WhatsApp through Turn.io: the webhook Turn posts for one number (the
//! WhatsApp Business API's `{contacts, messages}` shape), its optional
//! `X-Turn-Hook-Signature` (base64 HMAC-SHA256 of the raw body with the
//! webhook's secret), and sending through Turn's `/v1/messages`.
//!
//! Errors come in the WhatsApp Business API's shape,
//! `{"errors": [{"code", "title", "details"}]}`; [`classify`] sorts them.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Capabilities, Channel, ChannelError, Downloaded, Inbound, whatsapp_meta};

/// Where Turn's API lives.
pub const DEFAULT_API_BASE: &str = "https://whatsapp.turn.io";

/// The header Turn signs webhook calls with, when the webhook has a secret.
pub const SIGNATURE_HEADER: &str = "X-Turn-Hook-Signature";

/// The longest text body of one message, in characters.
pub const MAX_TEXT_LEN: usize = 4096;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `header` is the base64 HMAC-SHA256 of `body` with `secret`
/// (constant time). An empty secret or header accepts nothing.
pub fn verify_signature(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(given) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(given)
        .is_ok_and(|given| crate::hmac_sha256_matches(secret, body, &given))
}

/// The signature header Turn would send for `body` (for tests and fakes).
pub fn sign(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crate::hmac_sha256(secret, body))
}

/// The messages of a webhook body. Statuses and what is not a person's
/// message (`system`, `unsupported`, `unknown`) are left out; a body that
/// is not JSON is [`ChannelError::Invalid`].
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Inbound>, ChannelError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ChannelError::Invalid(format!("not a Turn webhook: {e}")))?;
    let contacts = v.get("contacts").and_then(Value::as_array);
    let mut out = Vec::new();
    for m in v
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
        if matches!(kind, "system" | "unsupported" | "unknown") {
            continue;
        }
        let (Some(id), Some(from)) = (
            m.get("id").and_then(Value::as_str),
            m.get("from").and_then(Value::as_str),
        ) else {
            continue;
        };
        let name = contacts
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(from))
                    .or(cs.first())
            })
            .and_then(|c| c.pointer("/profile/name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        out.push(Inbound {
            update_id: id.to_string(),
            chat_id: from.to_string(),
            user_id: from.to_string(),
            user_name: name,
            kind: whatsapp_meta::kind_of(m),
        });
    }
    Ok(out)
}

/// A client for one Turn number (the token is the number's).
#[derive(Clone)]
pub struct Turn {
    api_base: String,
    token: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Turn")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl Turn {
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

    /// Sends one text message (at most [`MAX_TEXT_LEN`] characters); returns its id.
    pub async fn send_message(&self, to: &str, text: &str) -> Result<String, ChannelError> {
        self.post_message(
            json!({"preview_url": false, "recipient_type": "individual", "to": to,
                                 "type": "text", "text": {"body": text}}),
        )
        .await
    }

    async fn post_message(&self, body: Value) -> Result<String, ChannelError> {
        let res = self
            .http
            .post(format!("{}/v1/messages", self.api_base))
            .bearer_auth(&self.token)
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        let (status, v) = self.caller().answer(res).await?;
        if !(200..300).contains(&status) {
            return Err(self.error(status, &v));
        }
        v.pointer("/messages/0/id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ChannelError::Invalid(format!("unexpected answer from Turn: {v}")))
    }

    fn error(&self, status: u16, v: &Value) -> ChannelError {
        let err = v.pointer("/errors/0").cloned().unwrap_or(Value::Null);
        let code = err.get("code").and_then(Value::as_i64);
        let message = self.caller().redact(
            err.get("details")
                .or_else(|| err.get("title"))
                .or_else(|| v.get("text"))
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        classify(status, code, &message)
    }

    /// Media a participant sent, by its id.
    pub async fn download(&self, media_id: &str) -> Result<Downloaded, ChannelError> {
        if !media_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ChannelError::Invalid("unusable Turn media id".into()));
        }
        let res = self
            .http
            .get(format!("{}/v1/media/{media_id}", self.api_base))
            .bearer_auth(&self.token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        crate::read_media(res, "the Turn media").await
    }

    /// Sends Ogg Opus audio as a voice note: uploaded (`/v1/media`), then
    /// sent by its id.
    pub async fn send_voice(&self, to: &str, audio: bytes::Bytes) -> Result<String, ChannelError> {
        self.send_file(to, audio, "audio/ogg", "voice.ogg").await
    }

    /// Sends a file: uploaded, then sent as an image, video, audio or
    /// document by its type.
    pub async fn send_file(
        &self,
        to: &str,
        bytes: bytes::Bytes,
        content_type: &str,
        file_name: &str,
    ) -> Result<String, ChannelError> {
        let res = self
            .http
            .post(format!("{}/v1/media", self.api_base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .timeout(self.timeout)
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        let (status, v) = self.caller().answer(res).await?;
        if !(200..300).contains(&status) {
            return Err(self.error(status, &v));
        }
        let id = v
            .pointer("/media/0/id")
            .and_then(Value::as_str)
            .ok_or_else(|| ChannelError::Invalid(format!("unexpected answer from Turn: {v}")))?;
        let mut message = whatsapp_meta::media_message(content_type, id, file_name);
        message["recipient_type"] = json!("individual");
        message["to"] = json!(to);
        self.post_message(message).await
    }

    fn caller(&self) -> crate::Caller<'_> {
        crate::Caller {
            api: "Turn",
            api_base: &self.api_base,
            secret: &self.token,
            timeout: self.timeout,
        }
    }
}

/// Sorts a failed send by the WhatsApp Business API's code, else its status.
pub fn classify(status: u16, code: Option<i64>, message: &str) -> ChannelError {
    let said = |what: &str| crate::said(what, message);
    match code {
        // Outside the 24-hour window (the on-premise API's and Cloud API's codes).
        Some(470 | 131_047) => {
            ChannelError::ReengagementRequired(said("outside the 24-hour window"))
        }
        // Not a WhatsApp user / not reachable.
        Some(1013 | 131_026) => ChannelError::Blocked(said("undeliverable")),
        Some(429 | 1015 | 130_429) => ChannelError::RateLimited { retry_after: None },
        _ => crate::status_error(status, message, "Turn refused the token", "Turn", "Turn"),
    }
}

#[async_trait::async_trait]
impl Channel for Turn {
    fn platform(&self) -> &'static str {
        "whatsapp"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::plain_with_media(MAX_TEXT_LEN)
    }

    fn parse_inbound(&self, body: &[u8]) -> Result<Vec<Inbound>, ChannelError> {
        parse_webhook(body)
    }

    async fn send_text(&self, to: &str, text: &str) -> Result<Vec<String>, ChannelError> {
        crate::send_parts(text, MAX_TEXT_LEN, |part| self.send_message(to, part)).await
    }
}
