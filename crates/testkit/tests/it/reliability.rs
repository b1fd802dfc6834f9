//! Tenancy matrix and bad input: another team's ids are 404 everywhere with
//! nothing written; malformed requests are clear 4xx with nothing written.

use chatstudio_testkit::{TestApp, both_backends};
use reqwest::Method;
use serde_json::{Value, json};

async fn counts(app: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for t in [
        "sessions",
        "messages",
        "participants",
        "participant_data",
        "schedules",
        "tags",
        "session_tags",
        "jobs",
        "files",
    ] {
        out.push(app.scalar(&format!("SELECT COUNT(*) FROM {t}")).await);
    }
    out
}

both_backends!(
    another_teams_objects_are_not_found_anywhere,
    async |app: &TestApp| {
        let a = app.team("a").await;
        let b = app.team("b").await;
        let bot = app.echo_bot(&a).await;
        let (_, s) = app.api_session(&a.key, bot, "p").await;
        let sid = s["id"].as_str().unwrap().to_string();
        let f = app
            .stored_file(a.id, ("a.txt", "text/plain"), "assistant", b"x")
            .await;
        let before = counts(app).await;
        let cases: Vec<(Method, String, Option<Value>, u16)> = vec![
            (Method::GET, format!("/api/experiments/{bot}/"), None, 404),
            (Method::GET, format!("/api/sessions/{sid}/"), None, 404),
            (
                Method::POST,
                format!("/api/sessions/{sid}/end_experiment_session/"),
                None,
                404,
            ),
            (
                Method::POST,
                format!("/api/sessions/{sid}/tags/"),
                Some(json!({"tags": ["x"]})),
                404,
            ),
            (
                Method::DELETE,
                format!("/api/sessions/{sid}/tags/"),
                Some(json!({"tags": ["x"]})),
                404,
            ),
            (
                Method::PATCH,
                format!("/api/sessions/{sid}/update_state/"),
                Some(json!({"state": {"x": 1}})),
                404,
            ),
            (
                Method::GET,
                format!("/api/files/{}/content", f.id),
                None,
                404,
            ),
            (
                Method::POST,
                "/api/sessions/".into(),
                Some(json!({"experiment": bot})),
                404,
            ),
            (
                Method::POST,
                "/api/participants".into(),
                Some(json!({"identifier": "p", "data": [{"experiment": bot, "data": {"x": 1}}]})),
                404,
            ),
            (
                Method::POST,
                format!("/channels/api/{bot}/incoming_message"),
                Some(json!({"message": "hi"})),
                404,
            ),
            (
                Method::POST,
                format!("/api/openai/{bot}/chat/completions"),
                Some(json!({"messages": [{"role": "user", "content": "hi"}]})),
                404,
            ),
            (
                Method::POST,
                "/api/trigger_bot".into(),
                Some(
                    json!({"identifier": "p", "platform": "api", "experiment": bot, "message_text": "x"}),
                ),
                404,
            ),
            (
                Method::POST,
                "/api/chat/start/".into(),
                Some(json!({"chatbot_id": bot})),
                404,
            ),
            (Method::GET, format!("/api/chat/{sid}/poll/"), None, 403),
        ];
        for (m, path, body, want) in cases {
            let mut rb = app.request(m.clone(), &path, Some(&b.key));
            if let Some(body) = body {
                rb = rb.json(&body);
            }
            let status = rb.send().await.unwrap().status().as_u16();
            assert_eq!(status, want, "{m} {path}");
        }
        // Lists and filters show nothing of team a.
        let list = app
            .get_json(&format!("/api/sessions/?experiment={bot}"), &b.key)
            .await;
        assert_eq!(list["count"], 0);
        let parts = app
            .get_json(&format!("/api/participants?chatbot={bot}"), &b.key)
            .await;
        assert_eq!(parts["count"], 0);
        assert_eq!(app.get_json("/api/experiments/", &b.key).await["count"], 0);
        assert_eq!(counts(app).await, before, "nothing written by any of them");
    }
);

both_backends!(
    bad_input_is_a_clear_4xx_and_writes_nothing,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.chatbot(&team, "Bot").await;
        let before = counts(app).await;
        let raw = async |path: &str, ct: &str, body: Vec<u8>| {
            let r = app
                .request(Method::POST, path, Some(&team.key))
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.text().await.unwrap())
        };
        // Oversized body.
        let big = format!(
            "{{\"experiment\": \"{bot}\", \"participant\": \"{}\"}}",
            "x".repeat(3 * 1024 * 1024)
        );
        let (s, _) = raw("/api/sessions/", "application/json", big.into_bytes()).await;
        assert_eq!(s, 413);
        // Invalid JSON, wrong content type, wrong types, huge strings.
        let (s, body) = raw(
            "/api/sessions/",
            "application/json",
            b"{\"experiment\":".to_vec(),
        )
        .await;
        assert_eq!(s, 400);
        assert!(body.contains("JSON parse error"), "{body}");
        let (s, _) = raw("/api/participants", "text/plain", b"hello".to_vec()).await;
        assert_eq!(s, 415);
        for (path, body) in [
            ("/api/sessions/", json!({"experiment": 5})),
            (
                "/api/sessions/",
                json!({"experiment": bot, "messages": "not a list"}),
            ),
            (
                "/api/sessions/",
                json!({"experiment": bot, "participant": "y".repeat(10_000)}),
            ),
            ("/api/sessions/", json!([1, 2, 3])),
            (
                "/api/participants",
                json!({"identifier": ["x"], "data": []}),
            ),
            (
                "/api/participants",
                json!({"identifier": "z".repeat(1000), "data": []}),
            ),
            (
                "/api/participants",
                json!({"identifier": "p", "data": [{"experiment": bot, "schedules": [{"id": "i".repeat(40), "name": "n", "prompt": "p", "date": "2030-01-01"}]}]}),
            ),
            (
                "/api/trigger_bot",
                json!({"identifier": "p", "platform": "carrier-pigeon", "experiment": bot, "message_text": "x"}),
            ),
            (
                "/api/trigger_bot",
                json!({"identifier": "p", "platform": "api", "experiment": bot, "message_text": "x", "session_data": "nope"}),
            ),
            ("/api/chat/start/", json!({"chatbot_id": 12})),
        ] {
            let (s, v) = app.post_json(path, &team.key, &body).await;
            assert!((400..500).contains(&s), "{path} {body}: {s} {v}");
            assert!(v.is_object(), "{path}: a JSON error body, got {v}");
        }
        let r = app
            .request(Method::POST, "/api/sessions/nope/tags/", Some(&team.key))
            .json(&json!({"tags": ["t".repeat(101)]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(counts(app).await, before, "nothing written");
        // Unknown fields are ignored, as the original does.
        let (s, _) = app
            .post_json(
                "/api/sessions/",
                &team.key,
                &json!({"experiment": bot, "surprise": true}),
            )
            .await;
        assert_eq!(s, 201);
    }
);

both_backends!(upstream_faults_end_cleanly, async |app: &TestApp| {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let team = app.team("a").await;
    let ok_body = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "recovered"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
    // 429 with Retry-After, then success: retried, answered.
    let flaky = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&flaky)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body.clone()))
        .mount(&flaky)
        .await;
    app.provider(&team, "flaky", "openai", Some(&flaky.uri()), Some("sk"))
        .await;
    let bot = app
        .llm_chatbot(&team, "flaky", "gpt-4o", "", json!({}))
        .await;
    let (s, v) = app
        .post_json(
            &format!("/channels/api/{bot}/incoming_message"),
            &team.key,
            &json!({"message": "hi"}),
        )
        .await;
    assert_eq!((s, v["response"].as_str()), (200, Some("recovered")));
    assert_eq!(flaky.received_requests().await.unwrap().len(), 2);
    // Malformed JSON and a provider that never answers: clear errors, consistent sessions.
    let broken = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .mount(&broken)
        .await;
    app.provider(&team, "broken", "openai", Some(&broken.uri()), Some("sk"))
        .await;
    let bot2 = app
        .llm_chatbot(&team, "broken", "gpt-4o", "", json!({}))
        .await;
    let (s, v) = app
        .post_json(
            &format!("/channels/api/{bot2}/incoming_message"),
            &team.key,
            &json!({"message": "hi"}),
        )
        .await;
    assert_eq!(s, 502, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("invalid provider response"),
        "{v}"
    );
    let silent = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(ok_body)
                .set_delay(std::time::Duration::from_secs(4)),
        )
        .mount(&silent)
        .await;
    app.provider(&team, "silent", "openai", Some(&silent.uri()), Some("sk"))
        .await;
    let bot3 = app
        .llm_chatbot(&team, "silent", "gpt-4o", "", json!({}))
        .await;
    let (s, v) = app
        .post_json(
            &format!("/channels/api/{bot3}/incoming_message"),
            &team.key,
            &json!({"message": "hi"}),
        )
        .await;
    assert_eq!(s, 502, "{v}");
    // Every failed turn left its human message and an error trace, and nothing half-written.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM traces WHERE status = 'error'")
            .await,
        2
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'human'")
            .await,
        3
    );
    // A stream cut mid-way: the SSE client gets an error event and [DONE]; the turn is recorded as failed.
    let cut = MockServer::start().await;
    let partial = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"},\"finish_reason\":null}]}\n\n";
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(partial),
        )
        .mount(&cut)
        .await;
    app.provider(&team, "cut", "openai", Some(&cut.uri()), Some("sk"))
        .await;
    let bot4 = app.llm_chatbot(&team, "cut", "gpt-4o", "", json!({})).await;
    let r = app
        .request(
            Method::POST,
            &format!("/api/openai/{bot4}/chat/completions"),
            Some(&team.key),
        )
        .json(&json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("\"error\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM traces WHERE status = 'error'")
            .await,
        3
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
            .await,
        0
    );
});
