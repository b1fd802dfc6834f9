//! Parsing the Updates Telegram posts to the webhook, and checking its secret.

#![expect(clippy::unwrap_used, reason = "tests and their harness fail loudly")]

use chatstudio_channels::telegram::{new_secret_token, parse_updates, verify_secret};
use chatstudio_channels::{
    Channel, ChannelError, Inbound, InboundKind, Media, MediaKind, Telegram,
};
use serde_json::{Value, json};

fn ada() -> Value {
    json!({"id": 987_654_321, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l", "language_code": "en"})
}

fn private_chat() -> Value {
    json!({"id": 987_654_321, "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l", "type": "private"})
}

/// A message update as Telegram sends it, with `extra` merged into the
/// message.
fn update(update_id: i64, extra: Value) -> Vec<u8> {
    let mut message = json!({
        "message_id": 51,
        "from": ada(),
        "chat": private_chat(),
        "date": 1_735_689_600,
    });
    for (k, v) in extra.as_object().unwrap() {
        message[k] = v.clone();
    }
    serde_json::to_vec(&json!({"update_id": update_id, "message": message})).unwrap()
}

fn parse_one(body: &[u8]) -> Inbound {
    // Through the trait, as the webhook handler will call it.
    let tg = Telegram::new("", "1:x", chatstudio_llm::http::client());
    let mut events = tg.parse_inbound(body).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn kind(extra: Value) -> InboundKind {
    parse_one(&update(1, extra)).kind
}

#[test]
fn text_message() {
    let event = parse_one(&update(
        735_114_201,
        json!({"text": "What are your opening hours?"}),
    ));
    assert_eq!(
        event,
        Inbound {
            update_id: "735114201".into(),
            chat_id: "987654321".into(),
            user_id: "987654321".into(),
            user_name: Some("ada_l".into()),
            kind: InboundKind::Text("What are your opening hours?".into()),
        }
    );
}

#[test]
fn commands() {
    let command = |text: &str, entity_len: usize| {
        kind(json!({
            "text": text,
            "entities": [{"offset": 0, "length": entity_len, "type": "bot_command"}]
        }))
    };
    assert_eq!(command("/reset", 6), InboundKind::Command("reset".into()));
    assert_eq!(
        command("/start@MyBot", 12),
        InboundKind::Command("start".into())
    );
    assert_eq!(
        command("/start ref-campaign-7", 6),
        InboundKind::Command("start".into())
    );
    assert_eq!(command("/HELP", 5), InboundKind::Command("help".into()));
    assert_eq!(
        kind(json!({"text": "/ not a command"})),
        InboundKind::Text("/ not a command".into())
    );
    assert_eq!(
        kind(json!({"text": "please /reset"})),
        InboundKind::Text("please /reset".into())
    );
}

#[test]
fn files_are_media_and_the_rest_unsupported() {
    let unsupported = |s: &str| InboundKind::Unsupported(s.into());
    let media = |kind: MediaKind,
                 reference: &str,
                 mime: Option<&str>,
                 name: Option<&str>,
                 caption: Option<&str>| {
        InboundKind::Media(Media {
            kind,
            reference: reference.into(),
            mime_type: mime.map(Into::into),
            file_name: name.map(Into::into),
            caption: caption.map(Into::into),
        })
    };
    assert_eq!(
        kind(
            json!({"voice": {"duration": 3, "mime_type": "audio/ogg", "file_id": "AwACAgIAAxkBAAIB", "file_unique_id": "AgADx", "file_size": 10_541}})
        ),
        media(
            MediaKind::Voice,
            "AwACAgIAAxkBAAIB",
            Some("audio/ogg"),
            None,
            None
        )
    );
    assert_eq!(
        kind(json!({
            "photo": [
                {"file_id": "AgACAgIAAxkBAAIC-s", "file_unique_id": "AQADs", "file_size": 1_406, "width": 90, "height": 67},
                {"file_id": "AgACAgIAAxkBAAIC-m", "file_unique_id": "AQADm", "file_size": 21_254, "width": 320, "height": 240}
            ],
            "caption": "what is this?"
        })),
        // The largest size is the original.
        media(
            MediaKind::Image,
            "AgACAgIAAxkBAAIC-m",
            Some("image/jpeg"),
            None,
            Some("what is this?")
        )
    );
    assert_eq!(
        kind(
            json!({"document": {"file_name": "menu.pdf", "mime_type": "application/pdf", "file_id": "BQACAgIAAxkBAAID", "file_unique_id": "AgADd", "file_size": 84_211}})
        ),
        media(
            MediaKind::Document,
            "BQACAgIAAxkBAAID",
            Some("application/pdf"),
            Some("menu.pdf"),
            None
        )
    );
    // An animation also carries `document`; it is named for what it is.
    assert_eq!(
        kind(
            json!({"animation": {"file_id": "CgAC", "file_unique_id": "AgADa", "width": 1, "height": 1, "duration": 1}, "document": {"file_id": "CgAC", "file_unique_id": "AgADa"}})
        ),
        unsupported("animation")
    );
    assert_eq!(
        kind(
            json!({"sticker": {"file_id": "CAACAgIAAxkBAAIE", "file_unique_id": "AgADs", "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false, "emoji": "👍"}})
        ),
        unsupported("sticker")
    );
    assert_eq!(
        kind(json!({"location": {"latitude": 52.52, "longitude": 13.405}})),
        unsupported("location")
    );
    assert_eq!(
        kind(json!({"new_chat_title": "Renamed"})),
        unsupported("other")
    );
}

#[test]
fn edited_messages_are_not_answered() {
    let body = json!({
        "update_id": 735_114_202,
        "edited_message": {
            "message_id": 51,
            "from": ada(),
            "chat": private_chat(),
            "date": 1_735_689_600,
            "edit_date": 1_735_689_660,
            "text": "What are your opening hours on Sunday?"
        }
    });
    let event = parse_one(&serde_json::to_vec(&body).unwrap());
    assert_eq!(event.update_id, "735114202");
    assert_eq!(event.chat_id, "987654321");
    assert_eq!(event.kind, InboundKind::Unsupported("edited".into()));
}

#[test]
fn callback_queries_and_other_updates_give_no_events() {
    let callback = json!({
        "update_id": 735_114_203,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "from": ada(),
            "message": {"message_id": 52, "chat": private_chat(), "date": 1_735_689_600, "text": "Pick one"},
            "chat_instance": "-8237493247932",
            "data": "opt-1"
        }
    });
    assert!(
        parse_updates(&serde_json::to_vec(&callback).unwrap())
            .unwrap()
            .is_empty()
    );
    let member = json!({"update_id": 735_114_204, "my_chat_member": {"chat": private_chat(), "from": ada(), "date": 1, "old_chat_member": {}, "new_chat_member": {}}});
    assert!(
        parse_updates(&serde_json::to_vec(&member).unwrap())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn group_messages_and_missing_usernames() {
    let body = json!({
        "update_id": 9,
        "message": {
            "message_id": 3,
            "from": {"id": 555, "is_bot": false, "first_name": "Grace", "last_name": "Hopper"},
            "chat": {"id": -1_001_234_567_890_i64, "title": "Support", "type": "supergroup"},
            "date": 1_735_689_600,
            "text": "/reset@StudioBot"
        }
    });
    let event = parse_one(&serde_json::to_vec(&body).unwrap());
    assert_eq!(event.chat_id, "-1001234567890");
    assert_eq!(event.user_id, "555");
    assert_eq!(event.user_name.as_deref(), Some("Grace Hopper"));
    assert_eq!(event.kind, InboundKind::Command("reset".into()));

    // Anonymous group admins write as the group itself.
    let body = json!({
        "update_id": 10,
        "message": {
            "message_id": 4,
            "sender_chat": {"id": -1_001_234_567_890_i64, "title": "Support", "type": "supergroup"},
            "chat": {"id": -1_001_234_567_890_i64, "title": "Support", "type": "supergroup"},
            "date": 1_735_689_600,
            "text": "hello"
        }
    });
    let event = parse_one(&serde_json::to_vec(&body).unwrap());
    assert_eq!(event.user_id, "-1001234567890");
    assert_eq!(event.user_name, None);
}

#[test]
fn get_updates_arrays_are_accepted() {
    let body = json!([
        {"update_id": 1, "message": {"message_id": 1, "from": ada(), "chat": private_chat(), "date": 1, "text": "a"}},
        {"update_id": 2, "callback_query": {"id": "x", "from": ada(), "chat_instance": "1"}},
        {"update_id": 3, "message": {"message_id": 2, "from": ada(), "chat": private_chat(), "date": 2, "text": "b"}}
    ]);
    let events = parse_updates(&serde_json::to_vec(&body).unwrap()).unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.update_id.as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
}

#[test]
fn unreadable_bodies_are_invalid() {
    for body in [
        &b""[..],
        b"not json",
        b"{\"update_id\": 1, \"message\": ",
        b"{\"message\": {\"text\": \"no update id\"}}",
        b"{\"update_id\": 1, \"message\": {\"message_id\": 1, \"text\": \"no chat\"}}",
        b"42",
    ] {
        let err = parse_updates(body).unwrap_err();
        assert!(
            matches!(err, ChannelError::Invalid(_)),
            "{}: {err:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn secret_header_check() {
    let secret = "Zq3m0Pp7yX2nB8vK1cR4tW6hJ9dL5sF0aG3eU7iO2uY8rT1w";
    assert!(verify_secret(secret, Some(secret)));
    assert!(!verify_secret(secret, None));
    assert!(!verify_secret(secret, Some("")));
    assert!(!verify_secret(secret, Some(&secret[..47])));
    assert!(!verify_secret(secret, Some(&format!("{secret}x"))));
    assert!(!verify_secret(secret, Some(&secret.to_lowercase())));
    // A bot configured without a secret must not accept every caller.
    assert!(!verify_secret("", Some("")));
    assert!(!verify_secret("", None));
}

#[test]
fn secret_tokens_are_long_random_and_allowed_by_telegram() {
    let a = new_secret_token();
    let b = new_secret_token();
    assert_eq!(a.len(), 48);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    );
    assert_ne!(a, b);
    assert!(verify_secret(&a, Some(&a)));
}
