//! Before the conversation: conversational consent, the seed message and the
//! participant allowlist, on Telegram, the widget, the API channel and the
//! OpenAI endpoint.

use chatstudio_testkit::contract::assert_schema;
use chatstudio_testkit::widget::WidgetClient;
use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use domain::channels::widget::AuthLevel;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::telegram::{
    SECRET, fake_telegram, sent, telegram_accepts, telegram_channel, update, webhook,
};

const ORIGIN: &str = "https://www.example.com";

/// An echo bot (`You said: …`) with the onboarding settings in `extra`; the
/// first of a team adds the team's builtin provider.
async fn bot_with(app: &TestApp, team: &TestTeam, extra: Value) -> Uuid {
    if app.scalar("SELECT COUNT(*) FROM chatbots").await == 0 {
        app.provider(team, "local", "builtin", None, None).await;
    }
    let mut config = json!({
        "pipeline": domain::pipeline::Pipeline::single_llm("local", "echo", ""),
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    app.chatbot_with(team, "Bot", config).await
}

async fn tell(app: &TestApp, ch: Uuid, id: i64, chat: i64, text: &str) {
    assert_eq!(
        webhook(app, ch, SECRET, &update(id, chat, Some(text))).await,
        200
    );
    app.settle().await;
}

/// The texts the fake Telegram received for `chat`, in order.
async fn said_to(app: &TestApp, chat: &str) -> Vec<String> {
    sent(app.telegram())
        .await
        .into_iter()
        .filter(|(c, _)| c == chat)
        .map(|(_, t)| t)
        .collect()
}

async fn status_of(app: &TestApp, identifier: &str) -> Vec<String> {
    app.rows(
        &format!(
            "SELECT s.status FROM sessions s JOIN participants p ON p.id = s.participant_id \
             WHERE p.identifier = '{identifier}' ORDER BY s.id"
        ),
        &["status"],
    )
    .await
    .into_iter()
    .map(|r| r["status"].as_str().unwrap().to_string())
    .collect()
}

/// A widget session of `bot` (an embed-key channel), once what its start
/// queued has run.
async fn widget_session(app: &TestApp, bot: Uuid) -> (WidgetClient, String) {
    let (_, key) = app
        .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
        .await;
    let w = app.widget_client(&key, ORIGIN);
    let sid = w.start(bot).await;
    app.settle().await;
    (w, sid)
}

const PROMPT: &str = "Do you agree to take part?\n\nReply 1 to continue.";

both_backends!(
    consent_is_asked_repeated_and_accepted,
    fake_telegram(),
    async |app: &TestApp| {
        telegram_accepts(app).await;
        let team = app.team("a").await;
        let b = bot_with(
            app,
            &team,
            json!({
                "consent": {"text": "Do you agree to take part?", "confirmation": "Reply 1 to continue."},
                "seed_message": {"text": "Hello! I am your study helper."},
            }),
        )
        .await;
        let ch = telegram_channel(app, b).await;
        // The first message is kept, and answered once consent is given.
        tell(app, ch, 1, 42, "When does the clinic open?").await;
        assert_eq!(said_to(app, "42").await, vec![PROMPT]);
        assert_eq!(status_of(app, "42").await, vec!["pending"]);
        tell(app, ch, 2, 42, "no").await;
        tell(app, ch, 3, 42, "what?").await;
        assert_eq!(said_to(app, "42").await, vec![PROMPT, PROMPT, PROMPT]);
        assert_eq!(status_of(app, "42").await, vec!["pending"]);
        tell(app, ch, 4, 42, " 1 ").await;
        assert_eq!(status_of(app, "42").await, vec!["active"]);
        assert_eq!(
            said_to(app, "42").await.last().unwrap(),
            "You said: When does the clinic open?"
        );
        tell(app, ch, 5, 42, "thanks").await;
        assert_eq!(said_to(app, "42").await.last().unwrap(), "You said: thanks");
        // Every message of the exchange is in the history, in order.
        let history: Vec<Value> = app
            .rows(
                "SELECT m.role, m.content FROM messages m JOIN sessions s ON s.id = m.session_id \
                 JOIN participants p ON p.id = s.participant_id WHERE p.identifier = '42' ORDER BY m.id",
                &["role", "content"],
            )
            .await;
        let roles: Vec<&str> = history
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            [
                "human", "ai", "human", "ai", "human", "ai", "human", "ai", "human", "ai"
            ]
        );
        // `/start` is no question: once consent is given the seed message is said.
        tell(app, ch, 6, 43, "/start").await;
        tell(app, ch, 7, 43, "Yes!").await;
        assert_eq!(
            said_to(app, "43").await,
            vec![PROMPT, "Hello! I am your study helper."]
        );
        assert_eq!(status_of(app, "43").await, vec!["active"]);
        // A new session asks again.
        tell(app, ch, 8, 43, "/reset").await;
        tell(app, ch, 9, 43, "hi again").await;
        assert_eq!(said_to(app, "43").await.last().unwrap(), PROMPT);
        assert_eq!(
            status_of(app, "43").await,
            vec!["pending-review", "pending"]
        );
    }
);

both_backends!(
    consent_with_nothing_to_answer_says_nothing,
    fake_telegram(),
    async |app: &TestApp| {
        telegram_accepts(app).await;
        let team = app.team("a").await;
        let b = bot_with(
            app,
            &team,
            json!({"consent": {"text": "Agree?", "accept": ["si"]}}),
        )
        .await;
        let ch = telegram_channel(app, b).await;
        tell(app, ch, 1, 7, "1").await;
        // The chatbot's own accepted reply; the original's "1" is not among them.
        tell(app, ch, 2, 7, "1").await;
        assert_eq!(said_to(app, "7").await, vec!["Agree?", "Agree?"]);
        tell(app, ch, 3, 7, "Si").await;
        assert_eq!(said_to(app, "7").await.len(), 2, "nothing to answer");
        assert_eq!(status_of(app, "7").await, vec!["active"]);
        tell(app, ch, 4, 7, "hello").await;
        assert_eq!(said_to(app, "7").await.last().unwrap(), "You said: hello");
        // The widget and the API channel have no conversational consent.
        let (s, v) = app.api_message(&team, b, "over the API").await;
        assert_eq!(
            (s, v["response"].as_str()),
            (200, Some("You said: over the API"))
        );
    }
);

both_backends!(
    seed_messages_open_widget_sessions_and_telegram_start,
    fake_telegram(),
    async |app: &TestApp| {
        telegram_accepts(app).await;
        let team = app.team("a").await;
        let verbatim = bot_with(
            app,
            &team,
            json!({"seed_message": {"text": "Hello! I am your study helper."}}),
        )
        .await;
        let (w, sid) = widget_session(app, verbatim).await;
        let r = w
            .request(reqwest::Method::GET, &format!("/api/chat/{sid}/poll/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_schema("ChatPollResponse", &v);
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 1, "{v}");
        assert_eq!(msgs[0]["role"], "assistant");
        assert_eq!(msgs[0]["content"], "Hello! I am your study helper.");
        // Said once per session, whatever the retries.
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'bot.send'")
                .await,
            1
        );
        // On Telegram, `/start` opening a session is answered by the seed;
        // later `/start`s and questions go to the bot.
        let ch = telegram_channel(app, verbatim).await;
        tell(app, ch, 1, 5, "/start").await;
        tell(app, ch, 2, 5, "/start").await;
        tell(app, ch, 3, 5, "a question").await;
        assert_eq!(
            said_to(app, "5").await,
            vec![
                "Hello! I am your study helper.".to_string(),
                "You said: /start".into(),
                "You said: a question".into()
            ]
        );
        // A question opening a session is answered, not greeted.
        tell(app, ch, 4, 6, "straight in").await;
        assert_eq!(said_to(app, "6").await, vec!["You said: straight in"]);
        // A prompt: the chatbot's LLM writes it from the instruction.
        let written = bot_with(
            app,
            &team,
            json!({"seed_message": {"prompt": "Greet the participant warmly"}}),
        )
        .await;
        let (_, sid) = widget_session(app, written).await;
        let said = app
            .rows(
                &format!(
                    "SELECT m.role, m.content FROM messages m JOIN sessions s ON s.id = m.session_id \
                     WHERE s.external_id = '{sid}'"
                ),
                &["role", "content"],
            )
            .await;
        assert_eq!(said.len(), 1);
        assert_eq!(said[0]["role"], "ai");
        assert!(
            said[0]["content"]
                .as_str()
                .unwrap()
                .contains("Greet the participant warmly"),
            "{said:?}"
        );
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM usage_records u JOIN sessions s ON s.id = u.session_id \
                 WHERE s.external_id = '{sid}'"
            ))
            .await,
            2,
            "the written seed is priced like any reply (input and output)"
        );
    }
);

/// Rows that would show a participant was stored.
async fn stored(app: &TestApp) -> (i64, i64, i64) {
    (
        app.scalar("SELECT COUNT(*) FROM participants").await,
        app.scalar("SELECT COUNT(*) FROM sessions").await,
        app.scalar("SELECT COUNT(*) FROM messages").await,
    )
}

both_backends!(
    the_allowlist_refuses_others_and_stores_nothing_of_them,
    fake_telegram(),
    async |app: &TestApp| {
        telegram_accepts(app).await;
        let team = app.team("a").await;
        let b = bot_with(
            app,
            &team,
            json!({
                "allowlist": {"identifiers": ["+1 555 0001", "42"], "message": "This study is closed."},
                "seed_message": {"text": "Welcome!"},
            }),
        )
        .await;
        let ch = telegram_channel(app, b).await;
        tell(app, ch, 1, 99, "let me in").await;
        assert_eq!(said_to(app, "99").await, vec!["This study is closed."]);
        assert_eq!(stored(app).await, (0, 0, 0));
        // Telegram retrying the update is not answered twice.
        tell(app, ch, 1, 99, "let me in").await;
        assert_eq!(said_to(app, "99").await.len(), 1);
        // The OpenAI endpoint: the caller's `user` is the participant.
        let path = format!("/api/openai/{b}/chat/completions");
        let ask =
            |user: &str| json!({"user": user, "messages": [{"role": "user", "content": "hi"}]});
        let (s, v) = app.post_json(&path, &team.key, &ask("+15550002")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "This study is closed."
        );
        assert_eq!(stored(app).await, (0, 0, 0));
        let r = app
            .request(reqwest::Method::POST, &path, Some(&team.key))
            .json(&json!({"user": "+15550002", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let body = r.text().await.unwrap();
        assert!(
            body.contains("This study is closed.") && body.ends_with("data: [DONE]\n\n"),
            "{body}"
        );
        assert_eq!(stored(app).await, (0, 0, 0));
        // Listed identifiers (compared without phone punctuation) chat as usual.
        // Members are let in by email; another team's member is not one of them.
        let other = app.team("b").await;
        let db = &app.domain.db.write;
        domain::teams::add_member(db, team.id, "ada", "Ada@A.org", domain::teams::Role::Member)
            .await
            .unwrap();
        domain::teams::add_member(
            db,
            other.id,
            "bea",
            "bea@b.org",
            domain::teams::Role::Member,
        )
        .await
        .unwrap();
        let (_, v) = app.post_json(&path, &team.key, &ask("bea@b.org")).await;
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "This study is closed."
        );
        let (_, v) = app.post_json(&path, &team.key, &ask("ada@a.org")).await;
        assert_eq!(v["choices"][0]["message"]["content"], "You said: hi");
        let (s, v) = app.post_json(&path, &team.key, &ask("+15550001")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["choices"][0]["message"]["content"], "You said: hi");
        tell(app, ch, 2, 42, "hello").await;
        assert_eq!(said_to(app, "42").await, vec!["You said: hello"]);
        // The key's user is a team member: always let in on the API channel.
        let (s, v) = app.api_message(&team, b, "member here").await;
        assert_eq!(
            (s, v["response"].as_str()),
            (200, Some("You said: member here"))
        );
        // An anonymous widget visitor is not listed: no seed, and the message is refused unstored.
        let before = app.scalar("SELECT COUNT(*) FROM messages").await;
        let (w, sid) = widget_session(app, b).await;

        let (s, v) = w.send(&sid, "am I in?").await;
        assert_eq!(s, 202, "{v}");
        let (s, v) = w.wait_task(&sid, v["task_id"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "complete");
        assert_eq!(v["message"]["content"], "This study is closed.");
        app.settle().await;
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, before);
    }
);
