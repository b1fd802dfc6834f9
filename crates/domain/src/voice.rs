//! A chatbot's voice (its configuration's `voice`): how participants' voice
//! notes are transcribed, and when and how replies are spoken. Both name a
//! team provider of kind `openai`: any server with the OpenAI-compatible
//! `/audio/transcriptions` and `/audio/speech` (OpenAI, Groq, a local
//! Whisper), so one credential serves chat and speech.
//!
//! ```yaml
//! voice:
//!   voice_response_behaviour: reciprocal   # never (default) | reciprocal | always
//!   transcription: {provider: openai, model: whisper-1, language: en}
//!   speech: {provider: openai, model: tts-1, voice: alloy}
//!   echo_transcript: false                 # say back what was heard first
//! ```
//!
//! `reciprocal` answers a voice note by voice and text by text, as the
//! original's behaviour of that name. Without `transcription`, voice notes
//! get the "not supported" apology; a spoken reply that cannot be made
//! falls back to text.

use serde::Deserialize;
use serde_json::Value;

use crate::text_enum::text_enum;
use crate::{Error, Result};

pub const CONFIG_KEY: &str = "voice";

text_enum!(
    /// When a reply is spoken (the original's `VoiceResponseBehaviours`).
    pub enum VoiceResponse {
        Never = "never",
        Reciprocal = "reciprocal",
        Always = "always",
    }
);

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voice {
    #[serde(default = "never")]
    pub voice_response_behaviour: VoiceResponse,
    #[serde(default)]
    pub transcription: Option<Transcription>,
    #[serde(default)]
    pub speech: Option<Speech>,
    #[serde(default)]
    pub echo_transcript: bool,
}

fn never() -> VoiceResponse {
    VoiceResponse::Never
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcription {
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    /// ISO-639-1 hint for the transcriber.
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speech {
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub voice: Option<String>,
}

impl Voice {
    /// Whether a reply to a message (a voice note or not) is spoken.
    pub fn speaks(&self, to_voice: bool) -> bool {
        self.speech.is_some()
            && match self.voice_response_behaviour {
                VoiceResponse::Never => false,
                VoiceResponse::Reciprocal => to_voice,
                VoiceResponse::Always => true,
            }
    }

    /// The providers it names, for the check that they exist.
    pub fn providers(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .transcription
            .iter()
            .map(|t| t.provider.clone())
            .chain(self.speech.iter().map(|s| s.provider.clone()))
            .collect();
        names.dedup();
        names
    }
}

/// A reply split for speaking: the words to say, and the links (and other
/// things a voice cannot say) to send as a text after it, as the original
/// does. Emoji are dropped from the spoken words.
pub fn spoken_parts(text: &str) -> (String, Option<String>) {
    let mut links = Vec::new();
    let mut words = Vec::new();
    for word in text.split_whitespace() {
        let bare = word.trim_matches(|c: char| "()[]<>\"'.,;:!?".contains(c));
        if bare.starts_with("http://") || bare.starts_with("https://") || bare.starts_with("www.") {
            links.push(bare.to_string());
            continue;
        }
        let said: String = word.chars().filter(|c| !is_pictograph(*c)).collect();
        if !said.is_empty() {
            words.push(said);
        }
    }
    let follow = (!links.is_empty()).then(|| links.join("\n"));
    (words.join(" "), follow)
}

/// Emoji and pictographs (what a speech model reads out as names, or not at all).
fn is_pictograph(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE0F | 0x200D)
}

/// The voice settings of a configuration, checked; the error names the field.
pub fn parse(config: &Value) -> std::result::Result<Option<Voice>, String> {
    let v = match config.get(CONFIG_KEY) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let voice: Voice =
        serde_path_to_error::deserialize(v.clone()).map_err(|e| format!("{CONFIG_KEY}: {e}"))?;
    let blank = |s: &str| s.trim().is_empty();
    if voice
        .transcription
        .as_ref()
        .is_some_and(|t| blank(&t.provider))
        || voice.speech.as_ref().is_some_and(|s| blank(&s.provider))
    {
        return Err(format!("{CONFIG_KEY}: a provider must be named"));
    }
    if voice.voice_response_behaviour != VoiceResponse::Never && voice.speech.is_none() {
        return Err(format!(
            "{CONFIG_KEY}: voice_response_behaviour {} needs speech (a provider and voice to speak with)",
            voice.voice_response_behaviour.as_str()
        ));
    }
    Ok(Some(voice))
}

pub fn validate(config: &Value) -> Result<()> {
    parse(config)
        .map(drop)
        .map_err(|m| Error::field("config", m))
}

/// The voice of a stored (already checked) configuration.
pub fn of_config(config: &Value) -> Option<Voice> {
    parse(config).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_and_emoji_are_not_spoken() {
        assert_eq!(
            spoken_parts("Book here: https://clinic.example/book. See you 👋!"),
            (
                "Book here: See you !".to_string(),
                Some("https://clinic.example/book".to_string())
            )
        );
        assert_eq!(
            spoken_parts("Just words."),
            ("Just words.".to_string(), None)
        );
        assert_eq!(spoken_parts("🎉"), (String::new(), None));
    }

    #[test]
    fn settings_are_read_and_checked() {
        let v = parse(&json!({"voice": {"voice_response_behaviour": "reciprocal",
            "transcription": {"provider": "oa"}, "speech": {"provider": "oa", "voice": "nova"}}}))
        .unwrap()
        .unwrap();
        assert!(v.speaks(true) && !v.speaks(false));
        assert_eq!(v.providers(), ["oa"]);
        assert_eq!(parse(&json!({})).unwrap(), None);
        for (bad, says) in [
            (
                json!({"voice": {"voice_response_behaviour": "sometimes"}}),
                "unknown VoiceResponse",
            ),
            (
                json!({"voice": {"voice_response_behaviour": "always"}}),
                "needs speech",
            ),
            (
                json!({"voice": {"transcription": {"provider": " "}}}),
                "must be named",
            ),
            (json!({"voice": {"speach": {}}}), "unknown field"),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let always = parse(
            &json!({"voice": {"voice_response_behaviour": "always", "speech": {"provider": "oa"}}}),
        )
        .unwrap()
        .unwrap();
        assert!(always.speaks(false));
    }
}
