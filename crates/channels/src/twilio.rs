//! WhatsApp through Twilio: the form-encoded webhook Twilio posts, its
//! `X-Twilio-Signature` (base64 HMAC-SHA1, keyed with the account's auth
//! token, of the full URL Twilio called followed by every POST parameter's
//! name and value in name order), and sending through the Messages API
//! (`/2010-04-01/Accounts/{sid}/Messages.json`, basic auth).
//!
//! Numbers travel as `whatsapp:+E164`. Status callbacks (no `Body`, a
//! `MessageStatus`) are left out.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use hmac13::{KeyInit, Mac};
use serde_json::Value;

use crate::{
    Capabilities, Channel, ChannelError, Downloaded, Inbound, InboundKind, Media, MediaKind,
};

/// Where Twilio's REST API lives.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// The header Twilio signs webhook calls with.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The longest body of one WhatsApp message through Twilio, in characters.
pub const MAX_TEXT_LEN: usize = 1600;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const PREFIX: &str = "whatsapp:";

type HmacSha1 = hmac13::Hmac<sha1::Sha1>;

/// The signature Twilio sends for a call to `url` with form `params`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let Ok(mut mac) = <HmacSha1 as KeyInit>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is Twilio's signature of the call (constant time).
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return false;
    };
    if auth_token.is_empty() {
        return false;
    }
    let want = sign(auth_token, url, params);
    bool::from(want.as_bytes().ct_eq(given.as_bytes()))
}

/// One inbound message and the number it was sent to (E.164).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioInbound {
    pub to: String,
    /// A text message (SMS/MMS) rather than WhatsApp.
    pub sms: bool,
    pub inbound: Inbound,
}

/// The message a webhook call carries: WhatsApp (`whatsapp:+…`) or SMS
/// (plain numbers); `None` for status callbacks and other channels
/// (Messenger).
pub fn parse_webhook(params: &[(String, String)]) -> Option<TwilioInbound> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (from, to) = (get("From")?, get("To")?);
    let (from, to, sms) = match (from.strip_prefix(PREFIX), to.strip_prefix(PREFIX)) {
        (Some(f), Some(t)) => (f, t, false),
        _ if from.starts_with('+') && to.starts_with('+') => (from, to, true),
        _ => return None,
    };
    let id = get("MessageSid").or_else(|| get("SmsSid"))?;
    let body = get("Body")?;
    let media = get("NumMedia")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    let kind = match get("MessageType") {
        // A quick-reply button's text is what the participant chose.
        Some("button") => InboundKind::Text(get("ButtonText").unwrap_or(body).to_string()),
        Some("interactive") => InboundKind::Text(
            get("ListTitle")
                .or_else(|| get("ButtonText"))
                .unwrap_or(body)
                .to_string(),
        ),
        _ if media > 0 => {
            let mime = get("MediaContentType0").unwrap_or("");
            let kind = match mime.split('/').next().unwrap_or("") {
                // WhatsApp voice notes arrive as `audio/ogg`.
                "audio" => MediaKind::Voice,
                "image" => MediaKind::Image,
                "video" => MediaKind::Video,
                _ => MediaKind::Document,
            };
            match get("MediaUrl0") {
                Some(url) => InboundKind::Media(Media {
                    kind,
                    reference: url.to_string(),
                    mime_type: Some(mime.to_string()).filter(|m| !m.is_empty()),
                    file_name: None,
                    caption: Some(body.to_string()).filter(|b| !b.trim().is_empty()),
                }),
                None => InboundKind::Unsupported(kind.as_str().into()),
            }
        }
        Some("location") => InboundKind::Unsupported("location".into()),
        _ => InboundKind::Text(body.to_string()),
    };
    let from = from.to_string();
    Some(TwilioInbound {
        to: to.to_string(),
        sms,
        inbound: Inbound {
            update_id: id.to_string(),
            chat_id: from.clone(),
            user_id: from,
            user_name: get("ProfileName").map(str::to_string),
            kind,
        },
    })
}

/// A client for one WhatsApp sender of a Twilio account.
#[derive(Clone)]
pub struct Twilio {
    api_base: String,
    account_sid: String,
    auth_token: String,
    /// The sender number (E.164).
    from: String,
    /// Text messages (plain numbers) instead of WhatsApp (`whatsapp:` ones).
    sms: bool,
    http: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for Twilio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Twilio")
            .field("api_base", &self.api_base)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Twilio {
    pub fn new(
        api_base: impl Into<String>,
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        from: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            api_base: crate::base_url(api_base.into(), DEFAULT_API_BASE),
            account_sid: account_sid.into().trim().to_owned(),
            auth_token: auth_token.into().trim().to_owned(),
            from: from.into().trim().to_owned(),
            sms: false,
            http,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sends text messages (SMS) instead of WhatsApp.
    pub fn sms(mut self) -> Self {
        self.sms = true;
        self
    }

    /// Sends one message (at most [`MAX_TEXT_LEN`] characters) to `to`
    /// (E.164); returns its SID.
    pub async fn send_message(&self, to: &str, text: &str) -> Result<String, ChannelError> {
        self.post(to, &[("Body", text)]).await
    }

    /// Sends media Twilio fetches from `url` (a voice note, a file).
    pub async fn send_media(&self, to: &str, url: &str) -> Result<String, ChannelError> {
        self.post(to, &[("MediaUrl", url)]).await
    }

    /// Sends `text` as an approved Content template with one variable
    /// (`{{1}}`): how a message reaches a participant outside WhatsApp's
    /// 24-hour window; long text goes as several.
    pub async fn send_template(
        &self,
        to: &str,
        content_sid: &str,
        text: &str,
    ) -> Result<Vec<String>, ChannelError> {
        let mut ids = Vec::new();
        for part in crate::parts(text, crate::whatsapp_meta::TEMPLATE_TEXT_LEN) {
            let vars = serde_json::json!({"1": part}).to_string();
            ids.push(
                self.post(
                    to,
                    &[("ContentSid", content_sid), ("ContentVariables", &vars)],
                )
                .await?,
            );
        }
        Ok(ids)
    }

    async fn post(&self, to: &str, what: &[(&str, &str)]) -> Result<String, ChannelError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_base, self.account_sid
        );
        let prefix = if self.sms { "" } else { PREFIX };
        let (from, to) = (format!("{prefix}{}", self.from), format!("{prefix}{to}"));
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("From", from.as_str()), ("To", to.as_str())])
            .extend_pairs(what.iter().copied())
            .finish();
        let res = self
            .http
            .post(&url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("content-type", "application/x-www-form-urlencoded")
            .timeout(self.timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        let (status, v) = self.caller().answer(res).await?;
        if (200..300).contains(&status) {
            return v
                .get("sid")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ChannelError::Invalid(format!("unexpected answer from Twilio: {v}"))
                });
        }
        let code = v.get("code").and_then(Value::as_i64);
        let message = self.caller().redact(
            v.get("message")
                .or_else(|| v.get("text"))
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        Err(classify(status, code, &message))
    }

    /// Media a participant sent, by the URL the webhook gave (with the
    /// account's credentials). Only URLs of the API this client calls are
    /// fetched: the webhook is signed, but a URL is not a licence to call
    /// anywhere.
    pub async fn download(&self, url: &str) -> Result<Downloaded, ChannelError> {
        let ours = url
            .strip_prefix(&self.api_base)
            .is_some_and(|rest| rest.starts_with('/'));
        if !ours {
            return Err(ChannelError::Invalid(format!(
                "media URL outside {}",
                self.api_base
            )));
        }
        let res = self
            .http
            .get(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.caller().transport_error(e))?;
        crate::read_media(res, "the Twilio media").await
    }

    fn caller(&self) -> crate::Caller<'_> {
        crate::Caller {
            api: "Twilio",
            api_base: &self.api_base,
            secret: &self.auth_token,
            timeout: self.timeout,
        }
    }
}

/// Sorts a failed send by Twilio's error code, else its status.
pub fn classify(status: u16, code: Option<i64>, message: &str) -> ChannelError {
    let said = |what: &str| crate::said(what, message);
    match code {
        // Free-form outside the 24-hour window: only an approved template
        // (a Twilio Content template) reaches the participant now.
        Some(63_016) => ChannelError::ReengagementRequired(said("outside the 24-hour window")),
        // Not a WhatsApp number, unreachable, or opted out.
        Some(21_211 | 21_610 | 21_614 | 63_003 | 63_024) => {
            ChannelError::Blocked(said("undeliverable"))
        }
        Some(20_429 | 63_018) => ChannelError::RateLimited { retry_after: None },
        Some(20_003 | 20_404 | 21_606 | 63_007) => {
            ChannelError::Config(said("Twilio refused the account or sender"))
        }
        _ => crate::status_error(
            status,
            message,
            "Twilio refused the credentials",
            "Twilio",
            "Twilio",
        ),
    }
}

#[async_trait::async_trait]
impl Channel for Twilio {
    fn platform(&self) -> &'static str {
        "whatsapp"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::plain_with_media(MAX_TEXT_LEN)
    }

    fn parse_inbound(&self, body: &[u8]) -> Result<Vec<Inbound>, ChannelError> {
        let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        Ok(parse_webhook(&params)
            .into_iter()
            .filter(|m| m.to == self.from && m.sms == self.sms)
            .map(|m| m.inbound)
            .collect())
    }

    async fn send_text(&self, to: &str, text: &str) -> Result<Vec<String>, ChannelError> {
        crate::send_parts(text, MAX_TEXT_LEN, |part| self.send_message(to, part)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in Twilio's webhook security documentation.
    #[test]
    fn the_signature_is_twilio_s() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = sign("12345", url, &params);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify_signature("12345", url, &params, Some(&sig)));
        assert!(!verify_signature(
            "12345",
            "https://mycompany.com/other",
            &params,
            Some(&sig)
        ));
        assert!(!verify_signature("", url, &params, Some(&sig)));
        assert!(!verify_signature("12345", url, &params, None));
    }
}
