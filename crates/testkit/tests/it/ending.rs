//! Every path that ends a session goes through one function: it records who
//! ended it and raises `ConversationEnded` exactly once, after the write
//! commits.

use std::time::Duration;

use chatstudio_testkit::{TestApp, both_backends};
use domain::events::Event;
use domain::sessions::EndedBy;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;

/// The one `ConversationEnded` the action raised, and that no other followed.
async fn ended_once(events: &mut Receiver<Event>) -> (i64, EndedBy) {
    let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .unwrap();
    // Let anything else the action raised arrive before checking there is none.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        events.try_recv(),
        Err(TryRecvError::Empty),
        "only one event"
    );
    match ev {
        Event::ConversationEnded {
            session_id,
            ended_by,
            ..
        } => (session_id.0, ended_by),
    }
}

async fn session_row(app: &TestApp, id: i64) -> (String, String) {
    let rows = app
        .rows(
            &format!("SELECT status, ended_by FROM sessions WHERE id = {id}"),
            &["status", "ended_by"],
        )
        .await;
    let r = &rows[0];
    (
        r["status"].as_str().unwrap().to_string(),
        r["ended_by"].as_str().unwrap_or_default().to_string(),
    )
}

both_backends!(ending_by_the_api, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let (s, body) = app
        .post_json("/api/sessions/", &team.key, &json!({"experiment": bot}))
        .await;
    assert_eq!(s, 201, "{body}");
    let external = body["id"].as_str().unwrap().to_string();
    let mut events = app.domain.events.subscribe();
    let (s, _) = app
        .post_json(
            &format!("/api/sessions/{external}/end_experiment_session/"),
            &team.key,
            &json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let (sid, by) = ended_once(&mut events).await;
    assert_eq!(by, EndedBy::Api);
    assert_eq!(
        session_row(app, sid).await,
        ("pending-review".into(), "api".into())
    );
});

both_backends!(ending_by_reset_on_the_api_channel, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let path = format!("/channels/api/{bot}/incoming_message");
    let (s, _) = app
        .post_json(&path, &team.key, &json!({"message": "hi"}))
        .await;
    assert_eq!(s, 200);
    let first = app.scalar("SELECT id FROM sessions").await;
    let mut events = app.domain.events.subscribe();
    let (s, body) = app
        .post_json(&path, &team.key, &json!({"message": "/reset"}))
        .await;
    assert_eq!(
        (s, body["response"].clone()),
        (200, json!("Conversation reset"))
    );
    assert_eq!(ended_once(&mut events).await, (first, EndedBy::User));
    assert_eq!(
        session_row(app, first).await,
        ("pending-review".into(), "user".into())
    );
    // A reset with no open session ends nothing.
    app.domain
        .db
        .write
        .execute_unprepared("UPDATE sessions SET status = 'complete'")
        .await
        .unwrap();
    app.post_json(&path, &team.key, &json!({"message": "/reset"}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
});

both_backends!(
    ending_by_trigger_bot_with_a_new_session,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        app.widget(
            bot,
            &["example.org"],
            domain::channels::widget::AuthLevel::EmbedKey,
        )
        .await;
        let body = |new: bool| {
            json!({"identifier": "p1", "platform": "embedded_widget", "experiment": bot,
               "message_text": "hello", "start_new_session": new})
        };
        let (s, first) = app
            .post_json("/api/trigger_bot", &team.key, &body(false))
            .await;
        assert_eq!(s, 200, "{first}");
        let first_id = app
            .scalar(&format!(
                "SELECT id FROM sessions WHERE external_id = '{}'",
                first["session_id"].as_str().unwrap()
            ))
            .await;
        let mut events = app.domain.events.subscribe();
        // Without start_new_session the open session is reused: nothing ends.
        let (s, again) = app
            .post_json("/api/trigger_bot", &team.key, &body(false))
            .await;
        assert_eq!((s, &again["session_id"]), (200, &first["session_id"]));
        let (s, second) = app
            .post_json("/api/trigger_bot", &team.key, &body(true))
            .await;
        assert_eq!(s, 200);
        assert_ne!(second["session_id"], first["session_id"]);
        assert_eq!(ended_once(&mut events).await, (first_id, EndedBy::User));
    }
);

both_backends!(ending_by_reset_on_telegram, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let ch = domain::channels::telegram::add(
        &app.domain.db.write,
        &app.domain.secrets,
        bot,
        "123456:TEST-token_x",
        "webhook-secret",
        json!({"username": "TestBot"}),
    )
    .await
    .unwrap()
    .id;
    let update = |id: i64, text: &str| -> Value {
        json!({"update_id": id, "message": {"message_id": id, "from": {"id": 42, "first_name": "Ana"},
               "chat": {"id": 42, "type": "private"}, "date": 0, "text": text}})
    };
    let post = async |body: Value| {
        app.client
            .post(app.url(&format!("/channels/telegram/{ch}")))
            .header("X-Telegram-Bot-Api-Secret-Token", "webhook-secret")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post(update(1, "hi")).await, 200);
    let first = app.scalar("SELECT id FROM sessions").await;
    let mut events = app.domain.events.subscribe();
    assert_eq!(post(update(2, "/reset")).await, 200);
    assert_eq!(ended_once(&mut events).await, (first, EndedBy::User));
    // The same update delivered again is not a second reset.
    assert_eq!(post(update(2, "/reset")).await, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ended_by = 'user'")
            .await,
        1
    );
});

both_backends!(ending_by_the_end_session_tool, async |app: &TestApp| {
    let team = app.team("a").await;
    app.provider(&team, "local", "builtin", None, None).await;
    let mut pipeline =
        serde_json::to_value(domain::pipeline::Pipeline::single_llm("local", "echo", "")).unwrap();
    pipeline["nodes"][1]["params"]["tools"] = json!(["end-session"]);
    let bot = app
        .chatbot_with(&team, "Bot", json!({"pipeline": pipeline}))
        .await;
    let path = format!("/channels/api/{bot}/incoming_message");
    let mut events = app.domain.events.subscribe();
    // Called twice in one turn, it still ends the session once.
    let (s, body) = app
        .post_json(
            &path,
            &team.key,
            &json!({"message": "/tool end-session {}\n/tool end-session {}"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body["response"]
            .as_str()
            .unwrap()
            .starts_with("end-session: Your intent to end the session has been registered."),
        "{body}"
    );
    let first = app.scalar("SELECT MIN(id) FROM sessions").await;
    assert_eq!(ended_once(&mut events).await, (first, EndedBy::Bot));
    assert_eq!(
        session_row(app, first).await,
        ("pending-review".into(), "bot".into())
    );
    // The next message opens a new session.
    app.post_json(&path, &team.key, &json!({"message": "hello again"}))
        .await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 2);
});
