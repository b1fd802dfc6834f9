//! WhatsApp through Meta's Cloud API: the webhook's verification handshake
//! and signature, the notifications it posts, and sending through the Graph
//! API's `/{phone_number_id}/messages`.
//!
//! One app's webhook carries every number of the business account: each
//! notification names its `phone_number_id`, so [`parse_webhook`] keeps it
//! with each message and the caller finds the channel by it. Delivery
//! statuses (`sent`, `delivered`, `read`, `failed`) are left out: nothing
//! here answers them.
//!
//! Errors come as `{"error": {"message", "type", "code", "error_subcode",
//! "fbtrace_id"}}`; [`classify`] sorts Meta's codes into [`ChannelError`]s
//! (131047, a message outside the 24-hour window, is
//! [`ChannelError::ReengagementRequired`]: send a template instead).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::{
    Capabilities, Channel, ChannelError, Downloaded, Inbound, InboundKind, Media, MediaKind,
};

/// Where the Graph API lives.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com";

/// The Graph API version every call names.
pub const API_VERSION: &str = "v21.0";

/// The longest text body of one message, in characters.
pub const MAX_TEXT_LEN: usize = 4096;

/// The template a message outside the 24-hour window goes as: the team
/// creates it in its Meta Business account with one body parameter named
/// [`TEMPLATE_PARAMETER`] (the original's convention, so existing templates
/// carry over).
pub const TEMPLATE_NAME: &str = "new_bot_message";

/// The template's one body parameter.
pub const TEMPLATE_PARAMETER: &str = "bot_message";

/// The longest text one template parameter carries here: Meta allows 1,024
/// characters in a template body; the template's own words get the rest.
pub const TEMPLATE_TEXT_LEN: usize = 924;

/// The header Meta signs every webhook call with.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// How long one Graph call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one WhatsApp number of a business account.
#[derive(Clone)]
pub struct MetaCloud {
    api_base: String,
    access_token: String,
    phone_number_id: String,
    http: reqwest::Client,
    timeout: Duration,
}

// Hand-written so the access token never reaches a log through `{:?}`.
impl fmt::Debug for MetaCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaCloud")
            .field("api_base", &self.api_base)
            .field("phone_number_id", &self.phone_number_id)
            .finish_non_exhaustive()
    }
}

/// One inbound message and the number it was sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaInbound {
    pub phone_number_id: String,
    pub inbound: Inbound,
}

/// The answer to the webhook's verification `GET`: the challenge to echo,
/// when the mode is `subscribe` and the token is ours (constant time).
pub fn verify_handshake(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Option<String> {
    let token = token?;
    let ours = !expected_token.is_empty()
        && token.len() == expected_token.len()
        && bool::from(token.as_bytes().ct_eq(expected_token.as_bytes()));
    (mode == Some("subscribe") && ours).then(|| challenge.unwrap_or_default().to_string())
}

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of the raw body with
/// the app secret. An empty secret accepts nothing.
pub fn verify_signature(app_secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    hex::decode(hex_sig).is_ok_and(|given| crate::hmac_sha256_matches(app_secret, body, &given))
}

/// The signature header Meta would send for `body` (for tests and fakes).
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(crate::hmac_sha256(app_secret, body))
    )
}

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    value: Option<ChangeValue>,
}

#[derive(Debug, Deserialize)]
struct ChangeValue {
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Debug, Deserialize)]
struct Contact {
    wa_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Debug, Deserialize)]
struct Profile {
    name: Option<String>,
}

/// The messages of a webhook body, each with its number. A body that is
/// not a notification is [`ChannelError::Invalid`].
pub fn parse_webhook(body: &[u8]) -> Result<Vec<MetaInbound>, ChannelError> {
    let n: Notification = serde_json::from_slice(body)
        .map_err(|e| ChannelError::Invalid(format!("not a WhatsApp notification: {e}")))?;
    let mut out = Vec::new();
    for change in n.entry.iter().flat_map(|e| &e.changes) {
        let Some(value) = change.value.as_ref().filter(|_| change.field == "messages") else {
            continue;
        };
        let Some(meta) = &value.metadata else {
            continue;
        };
        for m in &value.messages {
            let (Some(id), Some(from)) = (
                m.get("id").and_then(Value::as_str),
                m.get("from").and_then(Value::as_str),
            ) else {
                continue;
            };
            let name = value
                .contacts
                .iter()
                .find(|c| c.wa_id.as_deref() == Some(from))
                .or(value.contacts.first())
                .and_then(|c| c.profile.as_ref())
                .and_then(|p| p.name.clone());
            out.push(MetaInbound {
                phone_number_id: meta.phone_number_id.clone(),
                inbound: Inbound {
                    update_id: id.to_string(),
                    chat_id: from.to_string(),
                    user_id: from.to_string(),
                    user_name: name,
                    kind: kind_of(m),
                },
            });
        }
    }
    Ok(out)
}

/// What a message carries: text (typed, or the title of a button or list
/// reply), else the kind this adapter does not handle yet.
pub(crate) fn kind_of(m: &Value) -> InboundKind {
    let text = |path: &[&str]| {
        let mut v = m;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_str().map(str::to_string)
    };
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("other");
    let said = match kind {
        "text" => text(&["text", "body"]),
        "interactive" => text(&["interactive", "button_reply", "title"])
            .or_else(|| text(&["interactive", "list_reply", "title"])),
        // A template's quick-reply button.
        "button" => text(&["button", "text"]).or_else(|| text(&["button", "payload"])),
        _ => None,
    };
    let media = |media_kind: MediaKind| {
        let id = text(&[kind, "id"])?;
        Some(InboundKind::Media(Media {
            kind: media_kind,
            reference: id,
            mime_type: text(&[kind, "mime_type"]),
            file_name: text(&[kind, "filename"]),
            caption: text(&[kind, "caption"]),
        }))
    };
    let file = match kind {
        "audio" if m.pointer("/audio/voice") == Some(&Value::Bool(true)) => media(MediaKind::Voice),
        // The on-premise Business API (Turn) names voice notes `voice`.
        "voice" => media(MediaKind::Voice),
        "audio" => media(MediaKind::Audio),
        "image" => media(MediaKind::Image),
        "document" => media(MediaKind::Document),
        "video" => media(MediaKind::Video),
        _ => None,
    };
    match (said, file) {
        (Some(t), _) => InboundKind::Text(t),
        (None, Some(f)) => f,
        (None, None) => InboundKind::Unsupported(match kind {
            "audio" | "image" | "video" | "document" | "sticker" | "location" | "contacts"
            | "reaction" => kind.into(),
            _ => "other".into(),
        }),
    }
}

impl MetaCloud {
    /// A client for the number `phone_number_id`. A blank `api_base` means
    /// [`DEFAULT_API_BASE`]; tests point it at a local fake.
    pub fn new(
        api_base: impl Into<String>,
        access_token: impl Into<String>,
        phone_number_id: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            api_base: crate::base_url(api_base.into(), DEFAULT_API_BASE),
            access_token: access_token.into().trim().to_owned(),
            phone_number_id: phone_number_id.into().trim().to_owned(),
            http,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends one text message (at most [`MAX_TEXT_LEN`] characters); returns its id.
    pub async fn send_message(&self, to: &str, text: &str) -> Result<String, ChannelError> {
        self.send(
            to,
            json!({"type": "text", "text": {"preview_url": false, "body": text}}),
        )
        .await
    }

    /// Sends an approved template with one named body parameter (how a
    /// message reaches a participant outside the 24-hour window).
    pub async fn send_template(
        &self,
        to: &str,
        name: &str,
        language: &str,
        parameter: &str,
        body_text: &str,
    ) -> Result<String, ChannelError> {
        self.send(
            to,
            json!({"type": "template", "template": {
                "name": name,
                "language": {"code": language},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "parameter_name": parameter, "text": body_text},
                ]}],
            }}),
        )
        .await
    }

    /// Sends `text` as the [`TEMPLATE_NAME`] template, split into parts of at
    /// most [`TEMPLATE_TEXT_LEN`] characters (one template each, in order).
    pub async fn send_bot_message_template(
        &self,
        to: &str,
        language: &str,
        text: &str,
    ) -> Result<Vec<String>, ChannelError> {
        let mut ids = Vec::new();
        for part in crate::parts(text, TEMPLATE_TEXT_LEN) {
            ids.push(
                self.send_template(to, TEMPLATE_NAME, language, TEMPLATE_PARAMETER, part)
                    .await?,
            );
        }
        Ok(ids)
    }

    /// Media a participant sent, by its id: its URL from the Graph API,
    /// then the bytes (both with the access token).
    pub async fn download(&self, media_id: &str) -> Result<Downloaded, ChannelError> {
        if !media_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ChannelError::Invalid(
                "a WhatsApp media id is digits".into(),
            ));
        }
        let res = self
            .http
            .get(format!("{}/{API_VERSION}/{media_id}", self.api_base))
            .bearer_auth(&self.access_token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        let (status, v) = self.answer(res).await?;
        if !(200..300).contains(&status) {
            return Err(self.graph_error(status, &v));
        }
        let url = v
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| ChannelError::Invalid("the Graph API gave no media URL".into()))?;
        let res = self
            .http
            .get(url)
            .bearer_auth(&self.access_token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        let mut got = crate::read_media(res, "the WhatsApp media").await?;
        if got.content_type.is_none() {
            got.content_type = v
                .get("mime_type")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        Ok(got)
    }

    /// Uploads media for the number; returns the media id to send.
    pub async fn upload_media(
        &self,
        bytes: bytes::Bytes,
        content_type: &str,
        file_name: &str,
    ) -> Result<String, ChannelError> {
        let part = reqwest::multipart::Part::stream(bytes)
            .file_name(file_name.to_string())
            .mime_str(content_type)
            .map_err(|e| ChannelError::Invalid(format!("media part: {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", content_type.to_string())
            .part("file", part);
        let res = self
            .http
            .post(format!(
                "{}/{API_VERSION}/{}/media",
                self.api_base, self.phone_number_id
            ))
            .bearer_auth(&self.access_token)
            .timeout(self.timeout)
            .multipart(form)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        let (status, v) = self.answer(res).await?;
        if !(200..300).contains(&status) {
            return Err(self.graph_error(status, &v));
        }
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ChannelError::Invalid(format!("unexpected answer from the Graph API: {v}"))
            })
    }

    /// Sends Ogg Opus audio as a voice note: uploaded, then sent by its id.
    pub async fn send_voice(&self, to: &str, audio: bytes::Bytes) -> Result<String, ChannelError> {
        let id = self.upload_media(audio, "audio/ogg", "voice.ogg").await?;
        self.send(to, json!({"type": "audio", "audio": {"id": id}}))
            .await
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
        let id = self.upload_media(bytes, content_type, file_name).await?;
        self.send(to, media_message(content_type, &id, file_name))
            .await
    }

    /// The `phone_number_id` of `number` (E.164) among the business
    /// account's numbers, if it is one of them.
    pub async fn resolve_number(
        &self,
        business_id: &str,
        number: &str,
    ) -> Result<Option<String>, ChannelError> {
        // Meta's ids are digits: nothing in them needs escaping.
        let url = format!(
            "{}/{API_VERSION}/{}/phone_numbers?fields=id%2Cdisplay_phone_number",
            self.api_base,
            business_id.trim()
        );
        let res = self
            .http
            .get(&url)
            .bearer_auth(&self.access_token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        let (status, v) = self.answer(res).await?;
        if !(200..300).contains(&status) {
            return Err(self.graph_error(status, &v));
        }
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let want = digits(number);
        Ok(v.get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|e| {
                e.get("display_phone_number")
                    .and_then(Value::as_str)
                    .is_some_and(|d| digits(d) == want)
            })
            .and_then(|e| e.get("id"))
            .and_then(|id| match id {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }))
    }

    async fn answer(&self, res: reqwest::Response) -> Result<(u16, Value), ChannelError> {
        self.caller().answer(res).await
    }

    fn graph_error(&self, status: u16, v: &Value) -> ChannelError {
        let err = v.get("error").cloned().unwrap_or(Value::Null);
        let code = err.get("code").and_then(Value::as_i64);
        let message = self.caller().redact(
            err.pointer("/error_data/details")
                .or_else(|| err.get("message"))
                .or_else(|| v.get("text"))
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        classify(status, code, &message)
    }

    async fn send(&self, to: &str, message: Value) -> Result<String, ChannelError> {
        let mut body =
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to});
        if let (Some(b), Value::Object(m)) = (body.as_object_mut(), message) {
            b.extend(m);
        }
        let url = format!(
            "{}/{API_VERSION}/{}/messages",
            self.api_base, self.phone_number_id
        );
        let res = self
            .http
            .post(&url)
            .bearer_auth(&self.access_token)
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        let (status, v) = self.answer(res).await?;
        if (200..300).contains(&status) {
            return v
                .pointer("/messages/0/id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ChannelError::Invalid(format!("unexpected answer from the Graph API: {v}"))
                });
        }
        Err(self.graph_error(status, &v))
    }

    fn caller(&self) -> crate::Caller<'_> {
        crate::Caller {
            api: "the Graph API",
            api_base: &self.api_base,
            secret: &self.access_token,
            timeout: self.timeout,
        }
    }
}

/// The message that sends uploaded media by its id (documents keep their name).
pub(crate) fn media_message(content_type: &str, id: &str, file_name: &str) -> Value {
    let kind = media_type(content_type);
    let mut media = json!({"id": id});
    if kind == "document" {
        media["filename"] = json!(file_name);
    }
    json!({"type": kind, kind: media})
}

/// What WhatsApp sends a file of `content_type` as.
pub fn media_type(content_type: &str) -> &'static str {
    match content_type.split('/').next().unwrap_or("") {
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        _ => "document",
    }
}

/// Sorts a failed send by Meta's error code, else by its HTTP status.
pub fn classify(status: u16, code: Option<i64>, message: &str) -> ChannelError {
    let said = |what: &str| crate::said(what, message);
    match code {
        // The only template sent is ours: say how to make it.
        Some(132_001) => ChannelError::Config(said(&format!(
            "the {TEMPLATE_NAME:?} template does not exist in this language: create it in the \
             Meta Business account, with one body parameter {TEMPLATE_PARAMETER:?}, to reach \
             participants outside the 24-hour window"
        ))),
        // More than 24 hours since the participant last wrote.
        Some(131_047) => ChannelError::ReengagementRequired(said("outside the 24-hour window")),
        // Undeliverable, or the recipient is not a WhatsApp user / not allowed.
        Some(131_026 | 131_030 | 131_045 | 131_052) => ChannelError::Blocked(said("undeliverable")),
        Some(4 | 80_007 | 130_429 | 131_048 | 131_056) => {
            ChannelError::RateLimited { retry_after: None }
        }
        Some(1 | 2 | 131_000 | 131_016) => ChannelError::Temporary(said("WhatsApp is unavailable")),
        Some(0 | 3 | 10 | 190 | 200..=299) => {
            ChannelError::Config(said("the access token or its permissions were refused"))
        }
        Some(
            100 | 131_008 | 131_009 | 131_021 | 131_051 | 132_000..=132_999 | 133_000..=133_999,
        ) => ChannelError::Config(said("WhatsApp refused the message")),
        _ => crate::status_error(
            status,
            message,
            "the access token was refused",
            "Graph API",
            "WhatsApp",
        ),
    }
}

#[async_trait::async_trait]
impl Channel for MetaCloud {
    fn platform(&self) -> &'static str {
        "whatsapp"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::plain_with_media(MAX_TEXT_LEN)
    }

    fn parse_inbound(&self, body: &[u8]) -> Result<Vec<Inbound>, ChannelError> {
        Ok(parse_webhook(body)?
            .into_iter()
            .filter(|m| m.phone_number_id == self.phone_number_id)
            .map(|m| m.inbound)
            .collect())
    }

    /// Splits at [`MAX_TEXT_LEN`] (WhatsApp counts characters; UTF-16 units
    /// are never fewer, so a part always fits) and sends the parts in order.
    async fn send_text(&self, to: &str, text: &str) -> Result<Vec<String>, ChannelError> {
        crate::send_parts(text, MAX_TEXT_LEN, |part| self.send_message(to, part)).await
    }
}
