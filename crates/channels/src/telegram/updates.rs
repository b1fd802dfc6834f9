//! The `Update`s Telegram posts to the webhook, read into [`Inbound`] events.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{ChannelError, Inbound, InboundKind, Media, MediaKind};

/// Parses a webhook body (one `Update`) or a `getUpdates` result (an array
/// of them) into events; see [`InboundKind`] for what each message becomes.
/// Updates without a message or edited message (callback queries, chat
/// member changes…) give no events.
pub fn parse_updates(body: &[u8]) -> Result<Vec<Inbound>, ChannelError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| ChannelError::Invalid(format!("Telegram update is not JSON: {e}")))?;
    // A participant cannot resend without them, and PostgreSQL cannot store them.
    strip_nul(&mut value);
    let updates = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut events = Vec::new();
    for update in updates {
        let update: Update = serde_json::from_value(update)
            .map_err(|e| ChannelError::Invalid(format!("unreadable Telegram update: {e}")))?;
        let update_id = update.update_id.to_string();
        if let Some(msg) = update.message {
            let kind = message_kind(&msg);
            events.push(msg.into_inbound(update_id, kind));
        } else if let Some(msg) = update.edited_message {
            events.push(msg.into_inbound(update_id, InboundKind::Unsupported("edited".into())));
        }
    }
    Ok(events)
}

fn strip_nul(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', ""),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(o) => o.values_mut().for_each(strip_nul),
        _ => {}
    }
}

#[derive(Deserialize)]
struct Update {
    update_id: i64,
    message: Option<Message>,
    edited_message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    from: Option<User>,
    /// Set instead of a user for anonymous group admins and channel posts.
    sender_chat: Option<Chat>,
    chat: Chat,
    text: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct User {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
}

/// Media fields in the order they are checked: some messages carry several
/// (an animation also has `document`, a venue also has `location`), and the
/// first one names the message.
const MEDIA: [&str; 13] = [
    "voice",
    "video_note",
    "audio",
    "animation",
    "video",
    "photo",
    "sticker",
    "document",
    "venue",
    "location",
    "contact",
    "poll",
    "dice",
];

fn message_kind(msg: &Message) -> InboundKind {
    if let Some(text) = &msg.text {
        return match command_name(text) {
            Some(name) => InboundKind::Command(name),
            None => InboundKind::Text(text.clone()),
        };
    }
    let media = MEDIA.iter().find(|key| msg.rest.contains_key(**key));
    let caption = msg
        .rest
        .get("caption")
        .and_then(Value::as_str)
        .map(str::to_string);
    let field = |key: &str, name: &str| {
        msg.rest
            .get(key)
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let file = |kind: MediaKind, key: &str, reference: Option<String>, mime: Option<String>| {
        reference.map(|reference| {
            InboundKind::Media(Media {
                kind,
                reference,
                mime_type: mime.or_else(|| field(key, "mime_type")),
                file_name: field(key, "file_name"),
                caption: caption.clone(),
            })
        })
    };
    let known = match media.copied() {
        Some("voice") => file(MediaKind::Voice, "voice", field("voice", "file_id"), None),
        Some("audio") => file(MediaKind::Audio, "audio", field("audio", "file_id"), None),
        Some("video") => file(MediaKind::Video, "video", field("video", "file_id"), None),
        Some("document") => file(
            MediaKind::Document,
            "document",
            field("document", "file_id"),
            None,
        ),
        // Sizes from small to large: the last is the original.
        Some("photo") => file(
            MediaKind::Image,
            "photo",
            msg.rest
                .get("photo")
                .and_then(Value::as_array)
                .and_then(|sizes| sizes.last())
                .and_then(|p| p.get("file_id"))
                .and_then(Value::as_str)
                .map(str::to_string),
            Some("image/jpeg".into()),
        ),
        _ => None,
    };
    known.unwrap_or_else(|| InboundKind::Unsupported(media.copied().unwrap_or("other").to_owned()))
}

/// `"/start@MyBot payload"` → `"start"`. Telegram command names are 1–32
/// letters, digits and underscores; anything else (`"/"`, `"/ hi"`,
/// `"/usr/bin"`) is ordinary text.
fn command_name(text: &str) -> Option<String> {
    let word = text.strip_prefix('/')?.split(char::is_whitespace).next()?;
    let name = word.split_once('@').map_or(word, |(name, _bot)| name);
    let valid = (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| name.to_ascii_lowercase())
}

impl Message {
    fn into_inbound(self, update_id: String, kind: InboundKind) -> Inbound {
        let chat_id = self.chat.id.to_string();
        let (user_id, user_name) = match self.from {
            Some(user) => {
                let full_name = [user.first_name, user.last_name]
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                let name = user
                    .username
                    .filter(|u| !u.is_empty())
                    .or((!full_name.is_empty()).then_some(full_name));
                (user.id.to_string(), name)
            }
            None => {
                let sender = self.sender_chat.map_or(self.chat.id, |c| c.id);
                (sender.to_string(), None)
            }
        };
        Inbound {
            update_id,
            chat_id,
            user_id,
            user_name,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names() {
        assert_eq!(command_name("/reset").as_deref(), Some("reset"));
        assert_eq!(
            command_name("/Start@MyBot deep-link").as_deref(),
            Some("start")
        );
        assert_eq!(command_name("/help\nmore").as_deref(), Some("help"));
        assert_eq!(command_name("/"), None);
        assert_eq!(command_name("/ hi"), None);
        assert_eq!(command_name("/usr/bin is a path"), None);
        assert_eq!(command_name("hi /reset"), None);
        assert_eq!(command_name(&format!("/{}", "a".repeat(33))), None);
    }
}
