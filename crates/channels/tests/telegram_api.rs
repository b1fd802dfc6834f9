//! The Bot API client against a fake Telegram on loopback.

#![expect(clippy::unwrap_used, reason = "tests and their harness fail loudly")]

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chatstudio_channels::telegram::{BotInfo, MAX_TEXT_LEN};
use chatstudio_channels::{Channel, ChannelError, Telegram, utf16_len};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "123456789:AAH-secret_Token-value-0123456789ab";
const SECRET_HALF: &str = "AAH-secret_Token-value-0123456789ab";

fn api_path(method: &str) -> String {
    format!("/bot{TOKEN}/{method}")
}

fn telegram(server: &MockServer) -> Telegram {
    Telegram::new(server.uri(), TOKEN, chatstudio_llm::http::client())
}

fn ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": result}))
}

fn failure(status: u16, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "ok": false,
        "error_code": status,
        "description": description,
    }))
}

fn sent_message(id: i64, chat_id: i64, text: &str) -> Value {
    json!({
        "message_id": id,
        "from": {"id": 123_456_789, "is_bot": true, "first_name": "Studio", "username": "StudioBot"},
        "chat": {"id": chat_id, "first_name": "Ada", "type": "private"},
        "date": 1_735_689_600,
        "text": text,
    })
}

/// Answers every sendMessage with the next message id, starting at 100.
fn counting_sender() -> impl Fn(&Request) -> ResponseTemplate + Send + Sync {
    let next = AtomicI64::new(100);
    move |req: &Request| {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let id = next.fetch_add(1, Ordering::SeqCst);
        ok(sent_message(
            id,
            body["chat_id"].as_i64().unwrap(),
            body["text"].as_str().unwrap(),
        ))
    }
}

async fn sent_texts(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == api_path("sendMessage"))
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["chat_id"], json!(42));
            assert!(body.get("parse_mode").is_none(), "{body}");
            body["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn assert_no_token(err: &ChannelError) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(SECRET_HALF), "token leaked: {shown}");
}

#[tokio::test]
async fn get_me_reads_the_bot_account() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api_path("getMe")))
        .respond_with(ok(json!({
            "id": 123_456_789,
            "is_bot": true,
            "first_name": "Studio",
            "username": "StudioBot",
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false
        })))
        .expect(1)
        .mount(&server)
        .await;
    let me = telegram(&server).get_me().await.unwrap();
    assert_eq!(
        me,
        BotInfo {
            id: 123_456_789,
            username: "StudioBot".into(),
            first_name: "Studio".into(),
        }
    );
}

#[tokio::test]
async fn set_webhook_sends_the_exact_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path("setWebhook")))
        .and(body_json(json!({
            "url": "https://studio.example.org/hooks/telegram/bot-1",
            "secret_token": "s3cr3t-Value_x",
            "allowed_updates": ["message", "edited_message"],
            "drop_pending_updates": false
        })))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"ok": true, "result": true, "description": "Webhook was set"}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    telegram(&server)
        .set_webhook(
            "https://studio.example.org/hooks/telegram/bot-1",
            "s3cr3t-Value_x",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_webhook_keeps_pending_updates() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path("deleteWebhook")))
        .and(body_json(json!({"drop_pending_updates": false})))
        .respond_with(ok(json!(true)))
        .expect(1)
        .mount(&server)
        .await;
    telegram(&server).delete_webhook().await.unwrap();
}

#[tokio::test]
async fn send_message_sends_plain_text_and_returns_the_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .and(body_json(json!({"chat_id": 42, "text": "Hello *there*"})))
        .respond_with(ok(sent_message(7, 42, "Hello *there*")))
        .expect(1)
        .mount(&server)
        .await;
    let tg = telegram(&server);
    assert_eq!(tg.send_message("42", "Hello *there*").await.unwrap(), "7");
}

#[tokio::test]
async fn send_text_sends_short_text_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .respond_with(counting_sender())
        .expect(1)
        .mount(&server)
        .await;
    let ids = telegram(&server).send_text("42", "Hi!").await.unwrap();
    assert_eq!(ids, ["100"]);
    assert_eq!(sent_texts(&server).await, ["Hi!"]);
}

#[tokio::test]
async fn send_text_splits_long_text_at_newlines() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .respond_with(counting_sender())
        .expect(3)
        .mount(&server)
        .await;
    // 100 lines of 99 characters plus a newline: 10,000 characters.
    let text: String = (0..100)
        .map(|i| format!("{:0>99}\n", i.to_string()))
        .collect();
    assert_eq!(text.chars().count(), 10_000);

    let ids = telegram(&server).send_text("42", &text).await.unwrap();
    assert_eq!(ids, ["100", "101", "102"]);

    let texts = sent_texts(&server).await;
    assert_eq!(texts.len(), 3);
    for t in &texts {
        assert!(utf16_len(t) <= MAX_TEXT_LEN, "{}", utf16_len(t));
    }
    // Each cut falls on a newline, which is dropped; the last part keeps the
    // text's own final newline.
    assert_eq!(texts[0].chars().count(), 3999);
    assert!(texts[0].ends_with("39"));
    assert_eq!(texts.join("\n"), text);
}

#[tokio::test]
async fn send_text_splits_emoji_by_utf16_units() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .respond_with(counting_sender())
        .expect(2)
        .mount(&server)
        .await;
    let text = "😀".repeat(3000);
    let ids = telegram(&server).send_text("42", &text).await.unwrap();
    assert_eq!(ids.len(), 2);
    let texts = sent_texts(&server).await;
    assert_eq!(utf16_len(&texts[0]), 4096);
    assert_eq!(texts.concat(), text);
}

#[tokio::test]
async fn send_text_sends_nothing_for_blank_text() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(counting_sender())
        .expect(0)
        .mount(&server)
        .await;
    let tg = telegram(&server);
    assert!(tg.send_text("42", "").await.unwrap().is_empty());
    assert!(tg.send_text("42", " \n ").await.unwrap().is_empty());
}

#[tokio::test]
async fn send_text_waits_out_a_short_rate_limit_between_parts() {
    let server = MockServer::start().await;
    let second = "b".repeat(10);
    // Only the second part is limited, once: the first must not be resent.
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .and(body_json(json!({"chat_id": 42, "text": second})))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "ok": false,
            "error_code": 429,
            "description": "Too Many Requests: retry after 0",
            "parameters": {"retry_after": 0}
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .respond_with(counting_sender())
        .expect(2)
        .mount(&server)
        .await;
    let text = format!("{}\n{second}", "a".repeat(MAX_TEXT_LEN));
    let ids = telegram(&server).send_text("42", &text).await.unwrap();
    assert_eq!(ids, ["100", "101"]);
    let texts = sent_texts(&server).await;
    assert_eq!(texts.len(), 3, "first part, limited second, retried second");
    assert_eq!(texts[1], texts[2]);
}

#[tokio::test]
async fn blocked_user_is_blocked() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .respond_with(failure(403, "Forbidden: bot was blocked by the user"))
        .expect(1)
        .mount(&server)
        .await;
    let err = telegram(&server).send_text("42", "hi").await.unwrap_err();
    assert_eq!(
        err,
        ChannelError::Blocked("Forbidden: bot was blocked by the user".into())
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn missing_chat_is_blocked() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(failure(400, "Bad Request: chat not found"))
        .mount(&server)
        .await;
    let err = telegram(&server)
        .send_message("42", "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Blocked(_)), "{err:?}");
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "ok": false,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7}
        })))
        .expect(1)
        .mount(&server)
        .await;
    // On the first part it is the caller's decision: nothing was delivered.
    let err = telegram(&server).send_text("42", "hi").await.unwrap_err();
    assert_eq!(
        err,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn rate_limit_falls_back_to_the_retry_after_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_string("Too Many Requests"),
        )
        .mount(&server)
        .await;
    let err = telegram(&server)
        .send_message("42", "hi")
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn server_errors_are_temporary() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .respond_with(failure(500, "Internal Server Error"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .mount(&server)
        .await;
    let tg = telegram(&server);
    let err = tg.send_message("42", "hi").await.unwrap_err();
    assert!(matches!(err, ChannelError::Temporary(_)), "{err:?}");
    assert!(err.to_string().contains("500"), "{err}");
    let err = tg.send_message("42", "hi").await.unwrap_err();
    assert!(matches!(err, ChannelError::Temporary(_)), "{err:?}");
    assert!(err.to_string().contains("Bad Gateway"), "{err}");
}

#[tokio::test]
async fn bad_token_is_a_config_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api_path("getMe")))
        .respond_with(failure(401, "Unauthorized"))
        .mount(&server)
        .await;
    let err = telegram(&server).get_me().await.unwrap_err();
    assert!(matches!(err, ChannelError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("bot token"), "{err}");
    assert_no_token(&err);
}

#[tokio::test]
async fn bad_request_is_a_config_error_with_the_description() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(failure(
            400,
            "Bad Request: bad webhook: HTTPS url must be provided for webhook",
        ))
        .mount(&server)
        .await;
    let err = telegram(&server)
        .set_webhook("http://insecure.example.org/hook", "s")
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Config(_)), "{err:?}");
    assert!(
        err.to_string().contains("HTTPS url must be provided"),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_answers_are_invalid() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api_path("getMe")))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"ok\": tru"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api_path("sendMessage")))
        .respond_with(ok(json!({"no_message_id": true})))
        .mount(&server)
        .await;
    let tg = telegram(&server);
    let err = tg.get_me().await.unwrap_err();
    assert!(matches!(err, ChannelError::Invalid(_)), "{err:?}");
    let err = tg.send_message("42", "hi").await.unwrap_err();
    assert!(matches!(err, ChannelError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn the_token_never_appears_in_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(failure(
            400,
            &format!("Bad Request: invalid request to /bot{TOKEN}/sendMessage ({SECRET_HALF})"),
        ))
        .mount(&server)
        .await;
    let err = telegram(&server)
        .send_message("42", "hi")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("<redacted>"), "{err}");
    assert_no_token(&err);

    // reqwest's own messages name the URL, and with it the token.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let tg = Telegram::new(base, TOKEN, chatstudio_llm::http::client());
    let err = tg.send_message("42", "hi").await.unwrap_err();
    assert!(matches!(err, ChannelError::Temporary(_)), "{err:?}");
    assert_no_token(&err);
    assert!(!format!("{tg:?}").contains(SECRET_HALF));
}

#[tokio::test]
async fn slow_answers_time_out_as_temporary() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(sent_message(1, 42, "hi")).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let tg = telegram(&server).with_timeout(Duration::from_millis(200));
    let err = tg.send_message("42", "hi").await.unwrap_err();
    assert!(matches!(err, ChannelError::Temporary(_)), "{err:?}");
    assert_no_token(&err);
}

#[tokio::test]
async fn a_token_that_would_change_the_url_is_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    for token in ["", "123:abc/../../other", "123:abc?x=1", "123:abc#frag"] {
        let tg = Telegram::new(server.uri(), token, chatstudio_llm::http::client());
        let err = tg.get_me().await.unwrap_err();
        assert!(matches!(err, ChannelError::Config(_)), "{token}: {err:?}");
    }
}

#[tokio::test]
async fn channel_identity() {
    let server = MockServer::start().await;
    let tg = telegram(&server);
    let channel: &dyn Channel = &tg;
    assert_eq!(channel.platform(), "telegram");
    let caps = channel.capabilities();
    assert_eq!(caps.max_text_len, 4096);
    assert!(caps.commands && !caps.markdown && caps.voice && caps.files);
}
