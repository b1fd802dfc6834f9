//! A fake Telegram Bot API and the webhook, as the Telegram tests drive them.

use chatstudio_testkit::{Options, TestApp, TestTeam};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const TOKEN: &str = "123456:TEST-token_x";
pub const SECRET: &str = "webhook-secret";

/// An app whose Telegram calls go to a fake (`app.telegram()`).
pub fn fake_telegram() -> Options {
    Options {
        fake_telegram: true,
        ..Default::default()
    }
}

/// The fake answers every sendMessage.
pub async fn telegram_accepts(app: &TestApp) -> &MockServer {
    let fake = app.telegram();
    Mock::given(method("POST"))
        .and(path_regex(r"^/bot.*/sendMessage$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"message_id": 7, "date": 0, "chat": {"id": 1, "type": "private"}}})))
        .mount(fake)
        .await;
    fake
}

pub async fn telegram_channel(app: &TestApp, bot: Uuid) -> Uuid {
    domain::channels::telegram::add(
        &app.domain.db.write,
        &app.domain.secrets,
        bot,
        TOKEN,
        SECRET,
        json!({"username": "TestBot"}),
    )
    .await
    .unwrap()
    .id
}

/// Team "a"'s echo chatbot on a channel whose sends the platform's fake accepts.
pub struct EchoBot<'a> {
    pub fake: &'a MockServer,
    pub team: TestTeam,
    pub bot: Uuid,
    pub channel: Uuid,
}

/// [`EchoBot`] on a Telegram channel.
pub async fn telegram_echo_bot(app: &TestApp) -> EchoBot<'_> {
    let fake = telegram_accepts(app).await;
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let channel = telegram_channel(app, bot).await;
    EchoBot {
        fake,
        team,
        bot,
        channel,
    }
}

/// The sendMessage calls the fake received: (chat_id, text).
pub async fn sent(fake: &MockServer) -> Vec<(String, String)> {
    fake.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/sendMessage"))
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            (
                b["chat_id"].to_string().trim_matches('"').to_string(),
                b["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn update(id: i64, chat: i64, text: Option<&str>) -> Value {
    let mut message = json!({"message_id": id, "from": {"id": chat, "first_name": "Ana"}, "chat": {"id": chat, "type": "private"}, "date": 0});
    match text {
        Some(t) => message["text"] = json!(t),
        None => message["voice"] = json!({"file_id": "x", "duration": 2}),
    }
    json!({"update_id": id, "message": message})
}

pub async fn webhook(app: &TestApp, ch: Uuid, secret: &str, body: &Value) -> u16 {
    app.client
        .post(app.url(&format!("/channels/telegram/{ch}")))
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
