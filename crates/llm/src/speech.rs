//! Speech over the OpenAI-compatible audio endpoints (OpenAI, Groq, a local
//! Whisper or TTS server): `/audio/transcriptions` (multipart: the file and
//! the model; answered `{"text"}`) and `/audio/speech` (JSON: model, voice,
//! input and `response_format`; answered with the audio bytes).
//!
//! Voice notes are asked for as `opus`, which OpenAI's API answers as Ogg
//! Opus: what Telegram and WhatsApp play as a voice note, so nothing is
//! transcoded here.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::http::{self, Ctx};
use crate::{LlmError, ProviderConfig};

/// The transcription model when the chatbot names none.
pub const DEFAULT_TRANSCRIPTION_MODEL: &str = "whisper-1";
/// The speech model when the chatbot names none.
pub const DEFAULT_SPEECH_MODEL: &str = "tts-1";
/// The voice when the chatbot names none.
pub const DEFAULT_VOICE: &str = "alloy";

/// Audio to transcribe.
#[derive(Debug, Clone)]
pub struct Audio {
    pub bytes: Bytes,
    pub file_name: String,
    pub content_type: String,
}

fn auth(cfg: &ProviderConfig) -> Vec<(&'static str, String)> {
    match cfg.api_key.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => vec![("authorization", format!("Bearer {k}"))],
        None => Vec::new(),
    }
}

/// The text of `audio`, by `model`.
pub async fn transcribe(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    model: &str,
    audio: Audio,
) -> Result<String, LlmError> {
    #[derive(Deserialize)]
    struct Transcript {
        text: String,
    }
    let ctx = Ctx::new("transcription", cfg, model);
    let base = http::base_url(cfg, crate::openai::DEFAULT_BASE_URL);
    let own = auth(cfg);
    let own: Vec<(&'static str, &str)> = own.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let headers = http::headers(&ctx, &own, cfg)?;
    let part = reqwest::multipart::Part::bytes(audio.bytes.to_vec())
        .file_name(audio.file_name)
        .mime_str(&audio.content_type)
        .map_err(|e| ctx.invalid(format_args!("audio content type: {e}")))?;
    let form = reqwest::multipart::Form::new()
        .text("model", model.to_string())
        .text("response_format", "json")
        .part("file", part);
    let req = client
        .post(format!("{base}/audio/transcriptions"))
        .headers(headers)
        .multipart(form);
    let t: Transcript = http::send_json(&ctx, req).await?;
    Ok(t.text.trim().to_string())
}

/// `text` spoken by `voice`, as Ogg Opus.
pub async fn synthesize(
    client: &reqwest::Client,
    cfg: &ProviderConfig,
    model: &str,
    voice: &str,
    text: &str,
) -> Result<Bytes, LlmError> {
    let ctx = Ctx::new("speech", cfg, model);
    let base = http::base_url(cfg, crate::openai::DEFAULT_BASE_URL);
    let own = auth(cfg);
    let own: Vec<(&'static str, &str)> = own.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let headers = http::headers(&ctx, &own, cfg)?;
    let resp = client
        .post(format!("{base}/audio/speech"))
        .headers(headers)
        .json(&json!({"model": model, "voice": voice, "input": text, "response_format": "opus"}))
        .timeout(ctx.timeout)
        .send()
        .await
        .map_err(|e| ctx.transport_error(e))?;
    let status = resp.status();
    if !status.is_success() {
        let headers = resp.headers().clone();
        let url = format!("{base}/audio/speech");
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        return Err(ctx.status_error(status.as_u16(), &headers, &body, &url));
    }
    let audio = resp.bytes().await.map_err(|e| ctx.transport_error(e))?;
    if audio.is_empty() {
        return Err(ctx.invalid("no audio"));
    }
    Ok(audio)
}
