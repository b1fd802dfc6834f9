//! What an attack on a running server found, each closed: read-only keys
//! and disabled channels writing through the chat API.

use chatstudio_testkit::{TestApp, both_backends};
use domain::channels::widget::AuthLevel;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

const ORIGIN: &str = "https://www.example.com";

async fn call(rb: RequestBuilder) -> (u16, Value) {
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

fn upload_form() -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(b"hello".to_vec())
            .file_name("note.txt")
            .mime_str("text/plain")
            .unwrap(),
    )
}

both_backends!(
    a_read_only_key_cannot_write_through_the_chat_api,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (s, v) = app
            .post_json(
                "/api/chat/start/",
                &team.read_only_key,
                &json!({"chatbot_id": bot}),
            )
            .await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
        let (s, v) = app
            .post_json("/api/chat/start/", &team.key, &json!({"chatbot_id": bot}))
            .await;
        assert_eq!(s, 201, "{v}");
        let sid = v["session_id"].as_str().unwrap().to_string();
        let (s, v) = app
            .post_json(
                &format!("/api/chat/{sid}/message/"),
                &team.read_only_key,
                &json!({"message": "hi"}),
            )
            .await;
        assert_eq!(s, 403, "{v}");
        let (s, v) = call(
            app.request(
                Method::POST,
                &format!("/api/chat/{sid}/upload/"),
                Some(&team.read_only_key),
            )
            .multipart(upload_form()),
        )
        .await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, 0);
        // Reading stays open to it.
        let r = app
            .get(&format!("/api/chat/{sid}/poll/"), &team.read_only_key)
            .await;
        assert_eq!(r.status(), 200);
        let (s, _) = app
            .post_json(
                &format!("/api/chat/{sid}/message/"),
                &team.key,
                &json!({"message": "hi"}),
            )
            .await;
        assert_eq!(s, 202);
    }
);

both_backends!(
    a_disabled_widget_channel_stops_its_existing_sessions,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (ch, key) = app
            .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
            .await;
        let widget = |rb: RequestBuilder| rb.header("X-Embed-Key", &key).header("Origin", ORIGIN);
        let (s, v) = call(
            widget(app.request(Method::POST, "/api/chat/start/", None))
                .json(&json!({"chatbot_id": bot})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let sid = v["session_id"].as_str().unwrap().to_string();
        let message = |text: &str| {
            call(
                widget(app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None))
                    .json(&json!({"message": text})),
            )
        };
        let d = &app.domain.db.write;
        domain::channels::widget::set_enabled(d, ch.id, false, Some("We are closed today".into()))
            .await
            .unwrap();
        let (s, v) = message("hello").await;
        assert_eq!((s, v), (403, json!({"error": "We are closed today"})));
        let (s, v) = call(
            widget(app.request(Method::POST, &format!("/api/chat/{sid}/upload/"), None))
                .multipart(upload_form()),
        )
        .await;
        assert_eq!((s, v), (403, json!({"error": "We are closed today"})));
        // A team key does not get around it either.
        let (s, _) = app
            .post_json(
                &format!("/api/chat/{sid}/message/"),
                &team.key,
                &json!({"message": "x"}),
            )
            .await;
        assert_eq!(s, 403);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, 0);
        // The session can still be read; a message-less disable answers the default text.
        let (s, _) = call(widget(app.request(
            Method::GET,
            &format!("/api/chat/{sid}/poll/"),
            None,
        )))
        .await;
        assert_eq!(s, 200);
        domain::channels::widget::set_enabled(d, ch.id, true, None)
            .await
            .unwrap();
        domain::channels::widget::set_enabled(d, ch.id, false, None)
            .await
            .unwrap();
        let (s, v) = message("hello").await;
        assert_eq!(
            (s, v),
            (
                403,
                json!({"error": "This chatbot is currently unavailable."})
            )
        );
        domain::channels::widget::set_enabled(d, ch.id, true, None)
            .await
            .unwrap();
        let (s, v) = message("hello").await;
        assert_eq!(s, 202, "{v}");
    }
);
