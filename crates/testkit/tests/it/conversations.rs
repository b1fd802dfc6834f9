//! The channels API and the turn engine against fake providers on loopback.

use chatstudio_testkit::contract::assert_schema;
use chatstudio_testkit::{TestApp, both_backends};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn openai_reply(text: &str, prompt: u64, completion: u64, cached: u64) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                  "prompt_tokens_details": {"cached_tokens": cached}}
    })
}

fn incoming(bot: &uuid::Uuid) -> String {
    format!("/channels/api/{bot}/incoming_message")
}

both_backends!(
    openai_provider_gets_the_rendered_prompt_and_usage_is_priced,
    async |app: &TestApp| {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/chat/completions"))
            .and(header("authorization", "Bearer sk-test-123"))
            .respond_with(ResponseTemplate::new(200).set_body_json(openai_reply(
                "Hello Ana!",
                100,
                20,
                10,
            )))
            .mount(&fake)
            .await;
        let team = app.team("a").await;
        app.provider(
            &team,
            "openai",
            "openai",
            Some(&fake.uri()),
            Some("sk-test-123"),
        )
        .await;
        let bot = app
        .llm_chatbot(
            &team,
            "openai",
            "gpt-4o-mini",
            "You help {participant_data.name} (tasks: {participant_data.tasks[0]}). Step {session_state.step}.",
            json!({"mode": "max_history_length", "max_history_length": 10}),
        )
        .await;

        let (status, body) = app
            .post_json(&incoming(&bot), &team.key, &json!({"message": "Hi"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_schema("ApiResponseMessage", &body);
        assert_eq!(body, json!({"response": "Hello Ana!", "attachments": []}));

        // Give the participant data, then talk again: the prompt renders it.
        let participant = app.scalar("SELECT id FROM participants").await;
        let family = app.scalar("SELECT id FROM chatbots").await;
        domain::participants::data::set(
            &app.domain.db.write,
            team.id,
            domain::ParticipantId(participant),
            domain::ChatbotId(family),
            &json!({"name": "Ana", "tasks": ["walk"]}),
        )
        .await
        .unwrap();
        let (status, _) = app
            .post_json(&incoming(&bot), &team.key, &json!({"message": "Again"}))
            .await;
        assert_eq!(status, 200);

        let requests = fake.received_requests().await.unwrap();
        assert_eq!(requests.len(), 2);
        let first: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(first["model"], "gpt-4o-mini");
        assert_eq!(
            first["messages"],
            json!([
                {"role": "system", "content": "You help  (tasks: ). Step ."},
                {"role": "user", "content": "Hi"},
            ])
        );
        let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
        assert_eq!(
            second["messages"],
            json!([
                {"role": "system", "content": "You help Ana (tasks: walk). Step ."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello Ana!"},
                {"role": "user", "content": "Again"},
            ])
        );

        // One session, four messages, two successful traces.
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 1);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 4);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM traces WHERE status = 'success'")
                .await,
            2
        );
        assert_eq!(
        app.scalar("SELECT COUNT(*) FROM traces WHERE input_message_id IS NOT NULL AND output_message_id IS NOT NULL").await,
        2
    );
        assert_eq!(
            app.rows("SELECT status FROM sessions", &["status"]).await[0]["status"],
            "active"
        );

        // Usage per turn: 90 input, 10 cached, 20 output tokens of gpt-4o-mini (the
        // dated model name the provider reported matches the base price).
        let sid = app.scalar("SELECT id FROM sessions").await;
        let (total, by_model) =
            domain::turns::session_usage(&app.domain.db.read, domain::SessionId(sid))
                .await
                .unwrap();
        // Per turn: 90 × 0.015e-5 + 10 × 0.0075e-5 + 20 × 0.06e-5 USD = 2625e-8.
        assert_eq!(domain::pricing::format_e8(total), "0.00005250");
        assert_eq!(
            by_model,
            vec![("gpt-4o-mini-2024-07-18".to_string(), 5250, 240)]
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM usage_records").await, 6);
    }
);

both_backends!(
    history_modes_shape_what_the_model_sees,
    async |app: &TestApp| {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(openai_reply("ok", 10, 1, 0)))
            .mount(&fake)
            .await;
        let team = app.team("a").await;
        app.provider(&team, "openai", "openai", Some(&fake.uri()), Some("sk"))
            .await;
        let sent = async |n: usize| -> Vec<(String, String)> {
            let reqs = fake.received_requests().await.unwrap();
            let body: Value = serde_json::from_slice(&reqs[n].body).unwrap();
            body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["role"].as_str().unwrap().to_string(),
                        m["content"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        let pair = |r: &str, c: &str| (r.to_string(), c.to_string());

        let bot = app
            .llm_chatbot(
                &team,
                "openai",
                "gpt-4o",
                "Sys",
                json!({"mode": "max_history_length", "max_history_length": 2}),
            )
            .await;
        for m in ["one", "two", "three"] {
            let (s, _) = app
                .post_json(&incoming(&bot), &team.key, &json!({"message": m}))
                .await;
            assert_eq!(s, 200);
        }
        // System prompt, the last two stored messages, and the new turn.
        assert_eq!(
            sent(2).await,
            vec![
                pair("system", "Sys"),
                pair("user", "two"),
                pair("assistant", "ok"),
                pair("user", "three")
            ]
        );

        // truncate_tokens: the newest messages that fit the budget (each short
        // message is 5 tokens with overhead; the long one is 15).
        let bot = app
            .llm_chatbot(
                &team,
                "openai",
                "gpt-4o",
                "",
                json!({"mode": "truncate_tokens", "token_limit": 12}),
            )
            .await;
        app.post_json(
            &incoming(&bot),
            &team.key,
            &json!({"message": "a long first message, forty characters."}),
        )
        .await;
        app.post_json(&incoming(&bot), &team.key, &json!({"message": "short"}))
            .await;
        assert_eq!(
            sent(4).await,
            vec![pair("assistant", "ok"), pair("user", "short")]
        );

        // History type `none`: only the current input.
        let bot = app
            .llm_chatbot(&team, "openai", "gpt-4o", "", json!({"type": "none"}))
            .await;
        app.post_json(&incoming(&bot), &team.key, &json!({"message": "first"}))
            .await;
        app.post_json(&incoming(&bot), &team.key, &json!({"message": "second"}))
            .await;
        assert_eq!(sent(6).await, vec![pair("user", "second")]);
    }
);

both_backends!(summarize_writes_a_checkpoint, async |app: &TestApp| {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_reply(
            "SUMMARY-OR-REPLY",
            50,
            5,
            0,
        )))
        .mount(&fake)
        .await;
    let team = app.team("a").await;
    app.provider(&team, "openai", "openai", Some(&fake.uri()), Some("sk"))
        .await;
    let bot = app
        .llm_chatbot(
            &team,
            "openai",
            "gpt-4o",
            "Be brief.",
            json!({"mode": "summarize", "token_limit": 40}),
        )
        .await;
    let long = "x".repeat(60);
    for _ in 0..3 {
        let (s, body) = app
            .post_json(&incoming(&bot), &team.key, &json!({"message": long}))
            .await;
        assert_eq!(s, 200, "{body}");
    }
    // Turn 1: nothing to summarize. Turn 2: 2 stored messages (19 + 8 tokens) fit 40.
    // Turn 3: 4 stored messages exceed 40, so a summary call precedes the reply.
    let requests = fake.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    let summary_req: Value = serde_json::from_slice(&requests[2].body).unwrap();
    assert!(
        summary_req["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("summarize conversations")
    );
    assert!(
        summary_req["messages"][1]["content"]
            .as_str()
            .unwrap()
            .starts_with("User: xxx")
    );
    let reply_req: Value = serde_json::from_slice(&requests[3].body).unwrap();
    let msgs = reply_req["messages"].as_array().unwrap();
    assert_eq!(msgs[0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(
        msgs[1],
        json!({"role": "system", "content": "Summary of the earlier conversation:\nSUMMARY-OR-REPLY"})
    );
    assert_eq!(msgs.last().unwrap()["content"], long);
    // The checkpoint is stored and the summary call's usage is counted.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM messages WHERE summary IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT llm_calls FROM traces ORDER BY id DESC LIMIT 1")
            .await,
        2
    );
});

both_backends!(
    provider_failures_keep_the_human_message_and_an_error_trace,
    async |app: &TestApp| {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
            .mount(&fake)
            .await;
        let team = app.team("a").await;
        app.provider(&team, "flaky", "openai", Some(&fake.uri()), Some("sk"))
            .await;
        let bot = app
            .llm_chatbot(&team, "flaky", "gpt-4o", "", json!({}))
            .await;
        let (status, body) = app
            .post_json(&incoming(&bot), &team.key, &json!({"message": "hello?"}))
            .await;
        assert_eq!(status, 502, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("LLM provider failed"),
            "{body}"
        );
        // Retried twice after the first attempt (the testkit sets 2 retries).
        assert_eq!(fake.received_requests().await.unwrap().len(), 3);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'human'")
                .await,
            1
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
                .await,
            0
        );
        let traces = app
            .rows("SELECT status, error FROM traces", &["status", "error"])
            .await;
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0]["status"], "error");
        assert!(traces[0]["error"].as_str().unwrap().contains("500"));
        assert_eq!(app.scalar("SELECT COUNT(*) FROM usage_records").await, 0);

        // A bad key fails fast: one request, a clear message.
        let auth_fail = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"error": {"message": "Incorrect API key"}})),
            )
            .mount(&auth_fail)
            .await;
        app.provider(
            &team,
            "badkey",
            "openai",
            Some(&auth_fail.uri()),
            Some("sk-wrong"),
        )
        .await;
        let bot = app
            .llm_chatbot(&team, "badkey", "gpt-4o", "", json!({}))
            .await;
        let (status, body) = app
            .post_json(&incoming(&bot), &team.key, &json!({"message": "hi"}))
            .await;
        assert_eq!(status, 502);
        assert!(
            body["detail"].as_str().unwrap().contains("API key"),
            "{body}"
        );
        assert!(
            !body.to_string().contains("sk-wrong"),
            "never echo a credential"
        );
        assert_eq!(auth_fail.received_requests().await.unwrap().len(), 1);
    }
);

both_backends!(
    channel_sessions_reset_and_ownership,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (s, body) = app
            .post_json(&incoming(&bot), &team.key, &json!({"message": "first"}))
            .await;
        assert_eq!(
            (s, body["response"].as_str()),
            (200, Some("You said: first"))
        );
        app.post_json(&incoming(&bot), &team.key, &json!({"message": "second"}))
            .await;
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 1);
        let participant = app
            .rows(
                "SELECT identifier, platform FROM participants",
                &["identifier", "platform"],
            )
            .await;
        assert_eq!(
            participant,
            vec![json!({"identifier": "owner@a.chatstudio.local", "platform": "api"})]
        );

        // /reset ends the open session and starts a new one; nothing is persisted.
        let (s, body) = app
            .post_json(&incoming(&bot), &team.key, &json!({"message": "  /RESET "}))
            .await;
        assert_eq!(
            (s, body["response"].as_str()),
            (200, Some("Conversation reset"))
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 2);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM sessions WHERE status = 'pending-review'")
                .await,
            1
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 4);
        app.post_json(&incoming(&bot), &team.key, &json!({"message": "third"}))
            .await;
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 2);

        // An explicit session: the caller's own works; another member's is a 404.
        let first_session = app
            .rows(
                "SELECT external_id FROM sessions ORDER BY id LIMIT 1",
                &["external_id"],
            )
            .await[0]["external_id"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, _) = app
            .post_json(
                &incoming(&bot),
                &team.key,
                &json!({"message": "back to the old one", "session": first_session}),
            )
            .await;
        assert_eq!(s, 200);
        let other = domain::teams::add_member(
            &app.domain.db.write,
            team.id,
            "bob",
            "bob@example.org",
            domain::teams::Role::Admin,
        )
        .await
        .unwrap();
        let (_, bob_key) = domain::keys::create(&app.domain.db.write, team.id, other, "bob", false)
            .await
            .unwrap();
        let (s, body) = app
            .post_json(
                &incoming(&bot),
                &bob_key,
                &json!({"message": "peek", "session": first_session}),
            )
            .await;
        assert_eq!((s, body), (404, json!({"detail": "Not found."})));

        // Bad input is a clear 4xx.
        let (s, body) = app.post_json(&incoming(&bot), &team.key, &json!({})).await;
        assert_eq!(
            (s, body),
            (400, json!({"message": ["This field is required."]}))
        );
        let r = app
            .request(reqwest::Method::POST, &incoming(&bot), Some(&team.key))
            .header("content-type", "text/plain")
            .body("hi")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);
        let r = app
            .request(reqwest::Method::POST, &incoming(&bot), Some(&team.key))
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(
            r.json::<Value>().await.unwrap()["detail"]
                .as_str()
                .unwrap()
                .starts_with("JSON parse error - ")
        );
        let (s, _) = app
            .post_json(
                &incoming(&bot),
                &team.read_only_key,
                &json!({"message": "x"}),
            )
            .await;
        assert_eq!(s, 403);
        let (s, body) = app
            .post_json(
                &incoming(&uuid::Uuid::new_v4()),
                &team.key,
                &json!({"message": "x"}),
            )
            .await;
        assert_eq!(
            (s, body),
            (
                404,
                json!({"detail": "No Experiment matches the given query."})
            )
        );
        // Another team's chatbot is not found either.
        let b = app.team("b").await;
        let (s, _) = app
            .post_json(&incoming(&bot), &b.key, &json!({"message": "x"}))
            .await;
        assert_eq!(s, 404);
    }
);

both_backends!(version_selection, async |app: &TestApp| {
    let team = app.team("a").await;
    app.provider(&team, "local", "builtin", None, None).await;
    let bot = app
        .llm_chatbot(&team, "local", "echo-system", "prompt A", json!({}))
        .await;
    let set_prompt = async |text: &str| {
        let mut p = serde_json::to_value(domain::pipeline::Pipeline::single_llm(
            "local",
            "echo-system",
            text,
        ))
        .unwrap();
        p["nodes"][1]["params"]["history"] = json!({});
        domain::chatbots::update_working(
            &app.domain.db.write,
            team.id,
            bot,
            "Bot",
            None,
            Some(json!({"pipeline": p})),
        )
        .await
        .unwrap();
    };
    // Before any version: the working version answers.
    let ask = async |path: String| {
        app.post_json(&path, &team.key, &json!({"message": "/x"}))
            .await
    };
    assert_eq!(ask(incoming(&bot)).await.1["response"], "prompt A");
    app.publish(&team, bot, "v1", true).await; // v1 = A, published
    set_prompt("prompt B").await;
    app.publish(&team, bot, "v2", false).await; // v2 = B, not published
    set_prompt("prompt C").await; // working = C, number 3
    let v = |n: &str| format!("/channels/api/{bot}/{n}/incoming_message");
    assert_eq!(ask(incoming(&bot)).await.1["response"], "prompt A");
    assert_eq!(ask(v("v0")).await.1["response"], "prompt A");
    assert_eq!(ask(v("v1")).await.1["response"], "prompt A");
    assert_eq!(ask(v("v2")).await.1["response"], "prompt B");
    assert_eq!(ask(v("v3")).await.1["response"], "prompt C");
    let (s, _) = ask(v("v9")).await;
    assert_eq!(s, 404);
    let (s, _) = ask(v("latest")).await;
    assert_eq!(s, 404);
    // Traces record the version that ran.
    let versions: Vec<i64> = app
        .rows("SELECT version_number FROM traces ORDER BY id", &["v"])
        .await
        .iter()
        .map(|r| r["v"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 1, 1, 1, 2, 3]);
});

both_backends!(pipelines_are_validated_on_save, async |app: &TestApp| {
    let team = app.team("a").await;
    app.provider(&team, "local", "builtin", None, None).await;
    let db = &app.domain.db.write;
    let save = async |pipeline: Value| {
        domain::chatbots::create(
            db,
            team.id,
            None,
            "Bot",
            None,
            Some(json!({"pipeline": pipeline})),
        )
        .await
    };
    let mut p = serde_json::to_value(domain::pipeline::Pipeline::single_llm(
        "local",
        "echo",
        "Hi {participant_data.name} {nope}",
    ))
    .unwrap();
    let err = save(p.clone()).await.unwrap_err();
    assert!(
        err.to_string().contains("invalid input") || matches!(err, domain::Error::Field { .. })
    );
    let domain::Error::Field { field, message: v } = err else {
        panic!()
    };
    assert!(field == "pipeline" && v.contains("{nope}"), "{v}");
    p["nodes"][1]["params"]["prompt"] = json!("fine");
    p["nodes"][1]["params"]["provider"] = json!("missing");
    let domain::Error::Field { field, message: v } = save(p.clone()).await.unwrap_err() else {
        panic!()
    };
    assert!(
        field == "pipeline" && v.contains("\"missing\" does not exist"),
        "{v}"
    );
    p["nodes"][1]["params"]["provider"] = json!("local");
    p["edges"] = json!([{"from": "start", "to": "end"}]);
    let domain::Error::Field { field, message: v } = save(p.clone()).await.unwrap_err() else {
        panic!()
    };
    assert!(field == "pipeline" && v.contains("not reachable"), "{v}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM chatbots").await,
        0,
        "nothing half-written"
    );
    // A chatbot without a pipeline saves, but says so when asked to answer.
    let bot = app.chatbot(&team, "Draft").await;
    let (s, body) = app
        .post_json(&incoming(&bot), &team.key, &json!({"message": "hi"}))
        .await;
    assert_eq!(s, 502);
    assert!(
        body["detail"].as_str().unwrap().contains("no pipeline"),
        "{body}"
    );
});

both_backends!(
    provider_secrets_are_encrypted_at_rest,
    async |app: &TestApp| {
        let team = app.team("a").await;
        app.provider(
            &team,
            "openai",
            "openai",
            Some("http://127.0.0.1:9"),
            Some("sk-very-secret"),
        )
        .await;
        let stored = app.rows("SELECT secret FROM providers", &["secret"]).await;
        let s = stored[0]["secret"].as_str().unwrap();
        assert!(s.starts_with("v1:") && !s.contains("sk-very-secret"));
        let listed = domain::providers::list(&app.domain.db.read, team.id)
            .await
            .unwrap();
        assert!(!serde_json::to_string(&listed).unwrap().contains("sk-very"));
        let access =
            domain::providers::access(&app.domain.db.read, &app.domain.secrets, team.id, "openai")
                .await
                .unwrap();
        assert_eq!(access.api_key.as_deref(), Some("sk-very-secret"));
        assert!(
            !format!("{access:?}").contains("sk-very"),
            "Debug never prints the key"
        );
    }
);

both_backends!(
    a_client_that_leaves_does_not_lose_the_turn,
    async |app: &TestApp| {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(openai_reply("worth the wait", 5, 3, 0))
                    .set_delay(std::time::Duration::from_millis(700)),
            )
            .mount(&fake)
            .await;
        let team = app.team("a").await;
        app.provider(&team, "slow", "openai", Some(&fake.uri()), Some("sk"))
            .await;
        let bot = app
            .llm_chatbot(&team, "slow", "gpt-4o", "", json!({}))
            .await;
        let impatient = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(150))
            .build()
            .unwrap();
        let r = impatient
            .post(app.url(&incoming(&bot)))
            .header("X-Api-Key", &team.key)
            .json(&json!({"message": "are you there?"}))
            .send()
            .await;
        assert!(r.is_err(), "the client gave up first");
        // The human message was persisted before the provider was called; the
        // reply lands once the provider answers, with nobody listening. (On a
        // loaded machine the server may not have read the request yet when the
        // client gives up, hence the wait.)
        assert_eq!(
            app.wait_until("SELECT COUNT(*) FROM messages WHERE role = 'human'", 1)
                .await,
            1
        );
        let replies = app
            .wait_until("SELECT COUNT(*) FROM messages WHERE role = 'ai'", 1)
            .await;
        assert_eq!(replies, 1);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM traces WHERE status = 'success'")
                .await,
            1
        );
    }
);

both_backends!(
    anthropic_and_gemini_through_the_server,
    async |app: &TestApp| {
        let anthropic = MockServer::start().await;
        Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "ak-1"))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "Hi from Claude"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
        })))
        .mount(&anthropic)
        .await;
        let gemini = MockServer::start().await;
        Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-flash:generateContent"))
        .and(header("x-goog-api-key", "gk-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi from Gemini"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 2000, "candidatesTokenCount": 200, "totalTokenCount": 2200},
            "modelVersion": "gemini-2.5-flash"
        })))
        .mount(&gemini)
        .await;
        let team = app.team("a").await;
        app.provider(
            &team,
            "claude",
            "anthropic",
            Some(&anthropic.uri()),
            Some("ak-1"),
        )
        .await;
        app.provider(&team, "gem", "gemini", Some(&gemini.uri()), Some("gk-1"))
            .await;
        let c = app
            .llm_chatbot(
                &team,
                "claude",
                "claude-sonnet-4-5",
                "Be {session_state.tone}",
                json!({}),
            )
            .await;
        let g = app
            .llm_chatbot(&team, "gem", "gemini-2.5-flash", "Be brief", json!({}))
            .await;
        let (s, body) = app
            .post_json(&incoming(&c), &team.key, &json!({"message": "hello"}))
            .await;
        assert_eq!(
            (s, body["response"].as_str()),
            (200, Some("Hi from Claude"))
        );
        let (s, body) = app
            .post_json(&incoming(&g), &team.key, &json!({"message": "hello"}))
            .await;
        assert_eq!(
            (s, body["response"].as_str()),
            (200, Some("Hi from Gemini"))
        );
        let sent: Value =
            serde_json::from_slice(&anthropic.received_requests().await.unwrap()[0].body).unwrap();
        assert_eq!(sent["system"], "Be ");
        assert_eq!(
            sent["messages"],
            json!([{"role": "user", "content": "hello"}])
        );
        let sent: Value =
            serde_json::from_slice(&gemini.received_requests().await.unwrap()[0].body).unwrap();
        assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "Be brief");
        // Claude Sonnet 4.5: 1000 × $3/M + 100 × $15/M = 0.0045; Gemini 2.5 Flash: 2000 × $0.30/M + 200 × $2.50/M = 0.0011.
        let costs = app
        .rows("SELECT model_name, CAST(SUM(cost_e8) AS BIGINT) FROM usage_records GROUP BY model_name ORDER BY model_name", &["model", "cost"])
        .await;
        assert_eq!(
            costs,
            vec![
                json!({"model": "claude-sonnet-4-5-20250929", "cost": 450_000}),
                json!({"model": "gemini-2.5-flash", "cost": 110_000}),
            ]
        );
    }
);

both_backends!(
    concurrent_first_turns_share_the_version_tag,
    async |app: &TestApp| {
        // Every reply is tagged with the version; the first replies of a
        // chatbot create that tag concurrently, inside their turns'
        // transactions (on PostgreSQL a caught unique violation aborted them).
        let team = app.team("a").await;
        let bot = app
            .chatbot_with(
                &team,
                "Bot",
                json!({"pipeline": {
                    "nodes": [
                        {"id": "start", "type": "start"},
                        {"id": "t", "type": "template", "params": {"template_string": "got {{ input }}"}},
                        {"id": "end", "type": "end"}
                    ],
                    "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}]
                }}),
            )
            .await;
        let team = &team;
        let turns = (0..40).map(|i| async move {
            app.post_json(
                &format!("/channels/api/{bot}/incoming_message"),
                &team.key,
                &json!({"message": i.to_string()}),
            )
            .await
        });
        for (s, v) in futures_util::future::join_all(turns).await {
            assert_eq!(s, 200, "{v}");
        }
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM tags WHERE category = 'experiment_version'")
                .await,
            1
        );
    }
);
