//! Proactive messaging: Telegram in and out, trigger_bot, and schedules fired
//! by the scheduler with a controlled clock.

use chatstudio_testkit::contract::assert_schema;
use chatstudio_testkit::{TestApp, both_backends};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::telegram::{
    EchoBot, SECRET, TOKEN, fake_telegram, sent, telegram_accepts, telegram_channel,
    telegram_echo_bot, update, webhook,
};

both_backends!(
    telegram_end_to_end,
    fake_telegram(),
    async |app: &TestApp| {
        let EchoBot {
            fake, channel: ch, ..
        } = telegram_echo_bot(app).await;
        assert_eq!(
            webhook(app, ch, "wrong", &update(1, 42, Some("hi"))).await,
            403
        );
        assert_eq!(
            webhook(app, ch, SECRET, &update(1, 42, Some("hi"))).await,
            200
        );
        // Telegram retries: the same update again changes nothing.
        assert_eq!(
            webhook(app, ch, SECRET, &update(1, 42, Some("hi"))).await,
            200
        );
        app.settle().await;
        assert_eq!(
            sent(fake).await,
            vec![("42".to_string(), "You said: hi".to_string())]
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 2);
        let requests = fake.received_requests().await.unwrap();
        assert!(
            requests[0].url.path().starts_with(&format!("/bot{TOKEN}/")),
            "the token addresses the bot"
        );
        // The conversation continues in the same session; /reset starts another.
        webhook(app, ch, SECRET, &update(2, 42, Some("again"))).await;
        app.settle().await;
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 1);
        webhook(app, ch, SECRET, &update(3, 42, Some("/reset"))).await;
        app.settle().await;
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 2);
        assert_eq!(sent(fake).await.last().unwrap().1, "Conversation reset");
        // Voice is acknowledged, not answered by the model.
        webhook(app, ch, SECRET, &update(4, 42, None)).await;
        app.settle().await;
        assert!(
            sent(fake)
                .await
                .last()
                .unwrap()
                .1
                .contains("not supported yet")
        );
        let detail_platform = app
            .rows(
                "SELECT platform FROM sessions ORDER BY id DESC LIMIT 1",
                &["p"],
            )
            .await;
        assert_eq!(detail_platform[0]["p"], "telegram");
        // Unknown channel ids are not found.
        assert_eq!(
            webhook(app, Uuid::new_v4(), SECRET, &update(5, 42, Some("x"))).await,
            404
        );
    }
);

both_backends!(
    a_user_who_blocked_the_bot_is_not_retried,
    fake_telegram(),
    async |app: &TestApp| {
        let fake = app.telegram();
        Mock::given(method("POST"))
        .and(path_regex(r"^/bot.*/sendMessage$"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})))
        .mount(fake)
        .await;
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let ch = telegram_channel(app, bot).await;
        webhook(app, ch, SECRET, &update(1, 99, Some("hi"))).await;
        app.settle().await;
        assert_eq!(sent(fake).await.len(), 1, "one attempt, no retries");
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed' AND attempts = 1")
                .await,
            1
        );
        let meta = app
            .rows(
                "SELECT CAST(system_metadata AS TEXT) FROM participant_data",
                &["m"],
            )
            .await;
        let meta: Value = serde_json::from_str(meta[0]["m"].as_str().unwrap()).unwrap();
        assert_eq!(meta["blocked"], true);
        // trigger_bot to a blocked participant sends nothing more.
        app.trigger_bot_settled(&team, bot, "telegram", "99", "hello?")
            .await;
        assert_eq!(sent(fake).await.len(), 1);
    }
);

both_backends!(
    trigger_bot_both_modes_and_merges,
    fake_telegram(),
    async |app: &TestApp| {
        let EchoBot {
            fake, team, bot, ..
        } = telegram_echo_bot(app).await;
        let body = |extra: Value| {
            let mut b = json!({"identifier": "555", "platform": "telegram", "experiment": bot});
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        let (s, v) = app
        .post_json("/api/trigger_bot", &team.key, &body(json!({"message_text": "Your appointment is confirmed.", "participant_data": {"a": 1}, "session_data": {"s": 1}})))
        .await;
        assert_eq!(s, 200, "{v}");
        assert_schema("TriggerBotMessageResponse", &v);
        assert_eq!(v["channel"], "telegram");
        assert_eq!(v["team"], json!({"name": "a", "slug": "a"}));
        let sid = v["session_id"].as_str().unwrap().to_string();
        assert_eq!(v["url"], format!("{}/api/sessions/{sid}/", app.base));
        app.settle().await;
        assert_eq!(
            sent(fake).await,
            vec![(
                "555".to_string(),
                "Your appointment is confirmed.".to_string()
            )]
        );
        let d = app
            .get_json(&format!("/api/sessions/{sid}/"), &team.key)
            .await;
        assert_eq!(d["messages"][0]["metadata"]["direct_to_user"], true);
        assert_eq!(d["state"], json!({"s": 1}));
        // prompt_text: the chatbot writes it; data and state are merged, session reused.
        let (s, v) = app
        .post_json("/api/trigger_bot", &team.key, &body(json!({"prompt_text": "Remind them to walk", "participant_data": {"b": 2}, "session_data": {"t": 2}})))
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["session_id"], sid);
        app.settle().await;
        assert_eq!(
            sent(fake).await.last().unwrap().1,
            "You said: [Instruction] Remind them to walk"
        );
        let d = app
            .get_json(&format!("/api/sessions/{sid}/"), &team.key)
            .await;
        assert_eq!(d["state"], json!({"s": 1, "t": 2}));
        let parts = app
            .get_json("/api/participants?platform=telegram", &team.key)
            .await;
        assert_eq!(
            parts["results"][0]["data"][0]["data"],
            json!({"a": 1, "b": 2})
        );
        // start_new_session ends the old one.
        let (_, v) = app
            .post_json(
                "/api/trigger_bot",
                &team.key,
                &body(json!({"message_text": "new", "start_new_session": true})),
            )
            .await;
        assert_ne!(v["session_id"], sid);
        let old = app
            .get_json(&format!("/api/sessions/{sid}/"), &team.key)
            .await;
        assert_eq!(old["status"], "pending-review");
        // Errors.
        let (s, v) = app
            .post_json("/api/trigger_bot", &team.key, &body(json!({})))
            .await;
        assert_eq!(
            (s, v),
            (
                400,
                json!({"non_field_errors": ["Either 'prompt_text' or 'message_text' must be provided."]})
            )
        );
        let (s, v) = app
            .post_json(
                "/api/trigger_bot",
                &team.key,
                &body(json!({"prompt_text": "a", "message_text": "b"})),
            )
            .await;
        assert_eq!(
            (s, v),
            (
                400,
                json!({"non_field_errors": ["Provide either 'prompt_text' or 'message_text', not both."]})
            )
        );
        let mut whatsapp = body(json!({"message_text": "x"}));
        whatsapp["platform"] = json!("whatsapp");
        let (s, v) = app
            .post_json("/api/trigger_bot", &team.key, &whatsapp)
            .await;
        assert_eq!(
            (s, v),
            (
                400,
                json!({"detail": "Chatbot cannot send messages on the whatsapp channel. Create the channel first."})
            )
        );
        let mut unknown = body(json!({"message_text": "x"}));
        unknown["experiment"] = json!(Uuid::new_v4());
        let (s, _) = app.post_json("/api/trigger_bot", &team.key, &unknown).await;
        assert_eq!(s, 404);
        let (s, _) = app
            .post_json(
                "/api/trigger_bot",
                &team.read_only_key,
                &body(json!({"message_text": "x"})),
            )
            .await;
        assert_eq!(s, 403);
        let sessions_before = app.scalar("SELECT COUNT(*) FROM sessions").await;
        let other = app.team("b").await;
        let (s, _) = app
            .post_json(
                "/api/trigger_bot",
                &other.key,
                &body(json!({"message_text": "x"})),
            )
            .await;
        assert_eq!(s, 404);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM sessions").await,
            sessions_before
        );
    }
);

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn schedule_row(app: &TestApp, external: &str) -> Value {
    app.rows(
        &format!("SELECT status, total_triggers, last_error, CAST(next_trigger_at AS TEXT) FROM schedules WHERE external_id = '{external}'"),
        &["status", "total", "error", "next"],
    )
    .await
    .remove(0)
}

both_backends!(
    schedules_fire_at_their_time,
    fake_telegram(),
    async |app: &TestApp| {
        let fake = telegram_accepts(app).await;
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let db = &app.domain.db;
        let upsert = async |identifier: &str, platform: &str, schedules: Value| {
            let (s, v) = app
            .post_json("/api/participants", &team.key, &json!({"identifier": identifier, "platform": platform, "data": [{"experiment": bot, "schedules": schedules}]}))
            .await;
            assert_eq!(s, 200, "{v}");
        };
        // p1 talks to the bot over the API; p2 has no session and no channel.
        upsert("p1", "api", json!([{"id": "walk", "name": "Walk", "prompt": "Remind them to walk", "date": "2030-01-01T09:00:00Z"}])).await;
        let (s, session) = app.api_session(&team.key, bot, "p1").await;
        assert_eq!(s, 201);
        upsert(
        "p2",
        "api",
        json!([{"id": "lost", "name": "Lost", "prompt": "Hello", "date": "2030-01-01T09:00:00Z"}]),
    )
    .await;
        upsert(
        "p3",
        "api",
        json!([{"id": "gone", "name": "Gone", "prompt": "Hello", "date": "2030-01-01T09:00:00Z"}]),
    )
    .await;
        upsert("p3", "api", json!([{"id": "gone", "delete": true}])).await;
        // Before its time: nothing.
        assert_eq!(
            domain::schedules::tick(db, t("2030-01-01T08:59:59Z"), 100)
                .await
                .unwrap(),
            0
        );
        // At its time: p1's and p2's fire (p3's was cancelled); a second tick finds nothing more.
        assert_eq!(
            domain::schedules::tick(db, t("2030-01-01T09:00:01Z"), 100)
                .await
                .unwrap(),
            2
        );
        app.domain.job_signal.notify_waiters();
        assert_eq!(
            domain::schedules::tick(db, t("2030-01-01T09:00:02Z"), 100)
                .await
                .unwrap(),
            0
        );
        app.settle().await;
        let walk = schedule_row(app, "walk").await;
        assert_eq!(
            (walk["status"].as_str(), walk["total"].as_i64()),
            (Some("complete"), Some(1))
        );
        let d = app
            .get_json(
                &format!("/api/sessions/{}/", session["id"].as_str().unwrap()),
                &team.key,
            )
            .await;
        assert_eq!(
            d["messages"][0]["content"],
            "You said: [Instruction] Remind them to walk"
        );
        assert_eq!(d["messages"][0]["role"], "assistant");
        let lost = schedule_row(app, "lost").await;
        assert_eq!(lost["status"], "failed");
        assert!(
            lost["error"].as_str().unwrap().contains("no session"),
            "{lost}"
        );
        assert_eq!(schedule_row(app, "gone").await["status"], "cancelled");

        // A Telegram participant without a session: one is opened on the channel and the message pushed.
        telegram_channel(app, bot).await;
        upsert(
            "777",
            "telegram",
            json!([{"id": "tg", "name": "Tg", "prompt": "Say hi", "date": "2030-01-02T09:00:00Z"}]),
        )
        .await;
        assert_eq!(
            domain::schedules::tick(db, t("2030-01-02T09:00:01Z"), 100)
                .await
                .unwrap(),
            1
        );
        app.domain.job_signal.notify_waiters();
        app.settle().await;
        assert_eq!(
            sent(fake).await,
            vec![(
                "777".to_string(),
                "You said: [Instruction] Say hi".to_string()
            )]
        );
        assert_eq!(schedule_row(app, "tg").await["status"], "complete");
    }
);

both_backends!(recurring_schedules_and_restarts, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let db = &app.domain.db;
    let (_, session) = app.api_session(&team.key, bot, "p1").await;
    let pid = app
        .scalar("SELECT id FROM participants WHERE identifier = 'p1'")
        .await;
    let family = app.scalar("SELECT id FROM chatbots").await;
    let new = |external: &str, first: &str, interval: Option<i32>, cron: Option<&str>| {
        domain::schedules::NewSchedule {
            team_id: team.id,
            chatbot_family_id: family,
            participant_id: pid,
            external_id: external.into(),
            name: external.into(),
            prompt: format!("ping {external}"),
            first_at: t(first),
            interval_seconds: interval,
            cron: cron.map(str::to_string),
            timezone: cron.map(|_| "Europe/London".to_string()),
            repetitions: 0,
            end_date: None,
        }
    };
    // Daily at 09:00 London time, across the spring DST change (2026-03-29).
    domain::schedules::create(
        db,
        new("daily", "2026-03-28T09:00:00Z", None, Some("0 9 * * *")),
    )
    .await
    .unwrap();
    assert_eq!(
        domain::schedules::tick(db, t("2026-03-28T09:00:10Z"), 100)
            .await
            .unwrap(),
        1
    );
    app.domain.job_signal.notify_waiters();
    app.settle().await;
    let row = schedule_row(app, "daily").await;
    assert_eq!(row["status"], "scheduled");
    let next = app
        .rows(
            "SELECT next_trigger_at FROM schedules WHERE external_id = 'daily'",
            &["n"],
        )
        .await;
    let next_at = domain::schedules::get(
        db,
        app.scalar("SELECT id FROM schedules WHERE external_id = 'daily'")
            .await,
    )
    .await
    .unwrap()
    .unwrap()
    .next_trigger_at;
    assert_eq!(
        next_at,
        t("2026-03-29T08:00:00Z"),
        "09:00 BST is 08:00 UTC: {next:?}"
    );
    assert_eq!(
        domain::schedules::tick(db, t("2026-03-29T07:59:00Z"), 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        domain::schedules::tick(db, t("2026-03-29T08:00:05Z"), 100)
            .await
            .unwrap(),
        1
    );
    app.domain.job_signal.notify_waiters();
    app.settle().await;
    let s = domain::schedules::get(
        db,
        app.scalar("SELECT id FROM schedules WHERE external_id = 'daily'")
            .await,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        (s.total_triggers, s.next_trigger_at),
        (2, t("2026-03-30T08:00:00Z"))
    );

    // Hourly, overdue by ten hours (the server was down): fires once, then resumes on the grid after now.
    sea_orm::ConnectionTrait::execute_unprepared(
        &db.write,
        "UPDATE schedules SET status = 'cancelled' WHERE external_id = 'daily'",
    )
    .await
    .unwrap();
    let now = Utc::now();
    let first = (now - chrono::Duration::hours(10)).to_rfc3339();
    domain::schedules::create(db, new("hourly", &first, Some(3600), None))
        .await
        .unwrap();
    assert_eq!(domain::schedules::tick(db, now, 100).await.unwrap(), 1);
    app.domain.job_signal.notify_waiters();
    app.settle().await;
    assert_eq!(
        domain::schedules::tick(db, now + chrono::Duration::seconds(1), 100)
            .await
            .unwrap(),
        0,
        "not replayed"
    );
    let s = domain::schedules::get(
        db,
        app.scalar("SELECT id FROM schedules WHERE external_id = 'hourly'")
            .await,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(s.total_triggers, 1);
    assert!(
        s.next_trigger_at > now && s.next_trigger_at <= now + chrono::Duration::hours(1),
        "{}",
        s.next_trigger_at
    );
    let d = app
        .get_json(
            &format!("/api/sessions/{}/", session["id"].as_str().unwrap()),
            &team.key,
        )
        .await;
    assert_eq!(
        d["messages"].as_array().unwrap().len(),
        3,
        "two daily and one hourly message"
    );
});
