//! WhatsApp Cloud API: the webhook's handshake, signature and notifications
//! (shapes from Meta's webhook reference), and sends checked against a fake
//! Graph API on loopback.

#![expect(clippy::unwrap_used, reason = "tests and their harness fail loudly")]

use chatstudio_channels::whatsapp_meta::{
    MAX_TEXT_LEN, TEMPLATE_TEXT_LEN, classify, parse_webhook, sign, verify_handshake,
    verify_signature,
};
use chatstudio_channels::{Channel, ChannelError, InboundKind, Media, MediaKind, MetaCloud};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "EAAG-test-access-token";
const PHONE_ID: &str = "106540352242922";

/// A `messages` notification for `phone_number_id` holding `messages`.
fn notification(phone_number_id: &str, messages: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
                    "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
                    "messages": messages,
                }
            }]
        }]
    })
}

fn message(id: &str, kind: &str, body: Value) -> Value {
    let mut m = json!({"from": "16505551234", "id": id, "timestamp": "1749416383", "type": kind});
    m[kind] = body;
    m
}

fn kinds(body: &Value) -> Vec<InboundKind> {
    parse_webhook(&serde_json::to_vec(body).unwrap())
        .unwrap()
        .into_iter()
        .map(|m| m.inbound.kind)
        .collect()
}

#[test]
fn the_handshake_echoes_the_challenge_for_our_token_only() {
    let ok = verify_handshake(
        Some("subscribe"),
        Some("verify-me"),
        Some("1158201444"),
        "verify-me",
    );
    assert_eq!(ok.as_deref(), Some("1158201444"));
    assert_eq!(
        verify_handshake(Some("subscribe"), Some("wrong"), Some("1"), "verify-me"),
        None
    );
    assert_eq!(
        verify_handshake(
            Some("unsubscribe"),
            Some("verify-me"),
            Some("1"),
            "verify-me"
        ),
        None
    );
    assert_eq!(
        verify_handshake(Some("subscribe"), None, Some("1"), "verify-me"),
        None
    );
    assert_eq!(
        verify_handshake(Some("subscribe"), Some(""), Some("1"), ""),
        None
    );
}

#[test]
fn signatures_are_the_hmac_of_the_raw_body() {
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let good = sign("app-secret", body);
    assert!(good.starts_with("sha256="));
    assert!(verify_signature("app-secret", body, Some(&good)));
    // Uppercase hex is the same signature.
    assert!(verify_signature(
        "app-secret",
        body,
        Some(&good.to_uppercase().replace("SHA256=", "sha256="))
    ));
    assert!(!verify_signature("other-secret", body, Some(&good)));
    assert!(!verify_signature("app-secret", b"{}", Some(&good)));
    assert!(!verify_signature("app-secret", body, None));
    assert!(!verify_signature("app-secret", body, Some("sha1=abc")));
    assert!(!verify_signature(
        "app-secret",
        body,
        Some("sha256=not-hex")
    ));
    assert!(!verify_signature("", body, Some(&sign("", body))));
}

#[test]
fn text_and_replies_are_text_media_is_named() {
    let body = notification(
        PHONE_ID,
        json!([
            message("wamid.1", "text", json!({"body": "Hello there"})),
            message(
                "wamid.2",
                "interactive",
                json!({"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}})
            ),
            message(
                "wamid.3",
                "interactive",
                json!({"type": "list_reply", "list_reply": {"id": "r1", "title": "Monday", "description": "9–12"}})
            ),
            message(
                "wamid.4",
                "button",
                json!({"payload": "STOP", "text": "Stop promotions"})
            ),
            message(
                "wamid.5",
                "audio",
                json!({"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "1003383421387256", "voice": true})
            ),
            message(
                "wamid.6",
                "image",
                json!({"mime_type": "image/jpeg", "sha256": "x", "id": "1479537139650973", "caption": "look"})
            ),
            message(
                "wamid.7",
                "document",
                json!({"filename": "menu.pdf", "mime_type": "application/pdf", "sha256": "x", "id": "1"})
            ),
            message("wamid.8", "unsupported", json!({})),
        ]),
    );
    assert_eq!(
        kinds(&body),
        vec![
            InboundKind::Text("Hello there".into()),
            InboundKind::Text("Yes".into()),
            InboundKind::Text("Monday".into()),
            InboundKind::Text("Stop promotions".into()),
            InboundKind::Media(Media {
                kind: MediaKind::Voice,
                reference: "1003383421387256".into(),
                mime_type: Some("audio/ogg; codecs=opus".into()),
                file_name: None,
                caption: None,
            }),
            InboundKind::Media(Media {
                kind: MediaKind::Image,
                reference: "1479537139650973".into(),
                mime_type: Some("image/jpeg".into()),
                file_name: None,
                caption: Some("look".into()),
            }),
            InboundKind::Media(Media {
                kind: MediaKind::Document,
                reference: "1".into(),
                mime_type: Some("application/pdf".into()),
                file_name: Some("menu.pdf".into()),
                caption: None,
            }),
            InboundKind::Unsupported("other".into()),
        ]
    );
    let first = &parse_webhook(&serde_json::to_vec(&body).unwrap()).unwrap()[0];
    assert_eq!(first.phone_number_id, PHONE_ID);
    assert_eq!(first.inbound.update_id, "wamid.1");
    assert_eq!(first.inbound.chat_id, "16505551234");
    assert_eq!(first.inbound.user_name.as_deref(), Some("Sheena Nelson"));
}

#[test]
fn statuses_are_left_out_and_numbers_kept_apart() {
    let statuses = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
            "statuses": [{"id": "wamid.9", "status": "delivered", "timestamp": "1749416383", "recipient_id": "16505551234"}]
        }}]}]
    });
    assert!(kinds(&statuses).is_empty());
    let mut two = notification(
        PHONE_ID,
        json!([message("wamid.a", "text", json!({"body": "a"}))]),
    );
    let other = notification(
        "999",
        json!([message("wamid.b", "text", json!({"body": "b"}))]),
    );
    two["entry"]
        .as_array_mut()
        .unwrap()
        .push(other["entry"][0].clone());
    let body = serde_json::to_vec(&two).unwrap();
    let all = parse_webhook(&body).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].phone_number_id, "999");
    // Through the trait, a client sees its own number's messages only.
    let meta = MetaCloud::new("", TOKEN, PHONE_ID, chatstudio_llm::http::client());
    let mine = meta.parse_inbound(&body).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].update_id, "wamid.a");
    assert!(matches!(
        parse_webhook(b"not json"),
        Err(ChannelError::Invalid(_))
    ));
}

fn sent_ok(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": id}]
    }))
}

#[tokio::test]
async fn text_goes_to_the_number_s_messages_endpoint_split_at_the_limit() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE_ID}/messages")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(sent_ok("wamid.out"))
        .mount(&fake)
        .await;
    let meta = MetaCloud::new(fake.uri(), TOKEN, PHONE_ID, chatstudio_llm::http::client());
    let long = format!("{} {}", "a".repeat(MAX_TEXT_LEN - 10), "b".repeat(20));
    let ids = meta.send_text("16505551234", &long).await.unwrap();
    assert_eq!(ids, ["wamid.out", "wamid.out"]);
    let bodies: Vec<Value> = fake
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        bodies[0],
        json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
            "type": "text", "text": {"preview_url": false, "body": "a".repeat(MAX_TEXT_LEN - 10)}
        })
    );
    assert_eq!(bodies[1]["text"]["body"], "b".repeat(20));
    meta.send_bot_message_template("16505551234", "pt_BR", "Time for your check-in")
        .await
        .unwrap();
    let t: Value =
        serde_json::from_slice(&fake.received_requests().await.unwrap()[2].body).unwrap();
    assert_eq!(
        t["template"],
        json!({"name": "new_bot_message", "language": {"code": "pt_BR"},
               "components": [{"type": "body", "parameters": [{"type": "text", "parameter_name": "bot_message", "text": "Time for your check-in"}]}]})
    );
    assert_eq!(t["type"], "template");
    // A long message goes as several templates, each within the parameter's limit.
    let long = "word ".repeat(400);
    let ids = meta
        .send_bot_message_template("16505551234", "en", &long)
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    let parts: Vec<String> = fake.received_requests().await.unwrap()[3..]
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v.pointer("/template/components/0/parameters/0/text")
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(parts.iter().all(|p| p.chars().count() <= TEMPLATE_TEXT_LEN));
    assert_eq!(parts.join(" "), long);
}

#[tokio::test]
async fn send_errors_are_classified_and_never_show_the_token() {
    let fake = MockServer::start().await;
    let graph_error = |status: u16, code: i64, message: &str| {
        ResponseTemplate::new(status).set_body_json(json!({"error": {
            "message": message, "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"
        }}))
    };
    let cases = [
        (
            "1",
            graph_error(400, 131_047, "Re-engagement message"),
            "reengage",
        ),
        (
            "2",
            graph_error(400, 131_026, "Message Undeliverable"),
            "blocked",
        ),
        ("3", graph_error(429, 130_429, "Rate limit hit"), "rate"),
        (
            "4",
            graph_error(500, 131_000, "Something went wrong"),
            "temporary",
        ),
        (
            "5",
            graph_error(401, 190, &format!("Invalid OAuth access token {TOKEN}")),
            "config",
        ),
        (
            "6",
            ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"),
            "temporary",
        ),
    ];
    for (to, response, _) in &cases {
        Mock::given(method("POST"))
            .and(wiremock::matchers::body_partial_json(json!({"to": to})))
            .respond_with(response.clone())
            .mount(&fake)
            .await;
    }
    let meta = MetaCloud::new(fake.uri(), TOKEN, PHONE_ID, chatstudio_llm::http::client());
    for (to, _, want) in cases {
        let e = meta.send_message(to, "hi").await.unwrap_err();
        let got = match &e {
            ChannelError::ReengagementRequired(_) => "reengage",
            ChannelError::Blocked(_) => "blocked",
            ChannelError::RateLimited { .. } => "rate",
            ChannelError::Temporary(_) => "temporary",
            ChannelError::Config(_) => "config",
            ChannelError::Invalid(_) => "invalid",
        };
        assert_eq!(got, want, "{to}: {e}");
        assert!(!e.to_string().contains(TOKEN), "{e}");
        assert_eq!(
            e.is_retryable(),
            matches!(want, "rate" | "temporary"),
            "{to}"
        );
    }
    assert!(matches!(classify(404, None, ""), ChannelError::Config(_)));
}

#[tokio::test]
async fn a_number_resolves_to_its_phone_number_id() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/WABA1/phone_numbers"))
        .and(header("authorization", "Bearer tok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "111", "display_phone_number": "+1 555-000-1111"},
            {"id": "222", "display_phone_number": "+27 82 123 4567"},
        ]})))
        .mount(&fake)
        .await;
    let meta = MetaCloud::new(fake.uri(), "tok", "", chatstudio_llm::http::client());
    assert_eq!(
        meta.resolve_number("WABA1", "+27821234567")
            .await
            .unwrap()
            .as_deref(),
        Some("222")
    );
    assert_eq!(
        meta.resolve_number("WABA1", "+27820000000").await.unwrap(),
        None
    );
    let q = &fake.received_requests().await.unwrap()[0];
    assert_eq!(q.url.query(), Some("fields=id%2Cdisplay_phone_number"));
}
