//! The OpenAI-compatible endpoint: plain and streamed.

use chatstudio_testkit::contract::assert_schema;
use chatstudio_testkit::{TestApp, both_backends, event_stream};
use serde_json::{Value, json};

fn url(bot: &uuid::Uuid) -> String {
    format!("/api/openai/{bot}/chat/completions")
}

both_backends!(completions_seed_a_new_session, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let body = json!({
        "model": "anything",
        "messages": [
            {"role": "system", "content": "You are a singer"},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [{"type": "text", "text": "Sing a song for me"}, {"type": "text", "text": "Barracuda"}]},
        ]
    });
    let (s, reply) = app.post_json(&url(&bot), &team.key, &body).await;
    assert_eq!(s, 200, "{reply}");
    assert_schema("CreateChatCompletionResponse", &reply);
    assert_eq!(reply["model"], "");
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(
        reply["choices"][0]["message"],
        json!({"role": "assistant", "content": "You said: Sing a song for me Barracuda"})
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert!(reply["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let sid = reply["id"].as_str().unwrap();
    let roles = app
        .rows(
            &format!(
                "SELECT m.role, m.content FROM messages m JOIN sessions s ON s.id = m.session_id \
                 WHERE s.external_id = '{sid}' ORDER BY m.id"
            ),
            &["role", "content"],
        )
        .await;
    let roles: Vec<&str> = roles.iter().map(|r| r["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "human", "ai", "human", "ai"]);

    // Every call is a new session.
    let (_, again) = app
        .post_json(
            &url(&bot),
            &team.key,
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_ne!(again["id"], reply["id"]);

    // The versioned path.
    let (s, v) = app
        .post_json(
            &format!("/api/openai/{bot}/v0/chat/completions"),
            &team.key,
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
});

both_backends!(
    completion_errors_use_the_openai_envelope,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let envelope = |m: &str| json!({"error": {"message": m, "type": "error", "param": null, "code": null}});
        for (body, msg) in [
            (json!({"messages": []}), "No messages provided"),
            (json!({}), "No messages provided"),
            (
                json!({"messages": [{"role": "assistant", "content": "hi"}]}),
                "Last message must be a user message",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]}),
                "Only text messages are supported",
            ),
        ] {
            let (s, reply) = app.post_json(&url(&bot), &team.key, &body).await;
            assert_eq!((s, reply), (400, envelope(msg)), "{body}");
        }
        let (s, reply) = app
        .post_json(&url(&bot), &team.key, &json!({"messages": [{"role": "robot", "content": "x"}, {"role": "user", "content": "y"}]}))
        .await;
        assert_eq!(s, 400);
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("robot")
        );
        let (s, reply) = app
            .post_json(
                &url(&bot),
                &team.key,
                &json!({"messages": ["not an object"]}),
            )
            .await;
        assert_eq!(s, 400, "{reply}");
        let (s, reply) = app
            .post_json(
                &url(&uuid::Uuid::new_v4()),
                &team.key,
                &json!({"messages": [{"role": "user", "content": "y"}]}),
            )
            .await;
        assert_eq!(
            (s, reply),
            (
                404,
                json!({"detail": "No Experiment matches the given query."})
            )
        );
        // Nothing was written by the rejected calls.
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
        let (s, _) = app
            .post_json(
                &url(&bot),
                &team.read_only_key,
                &json!({"messages": [{"role": "user", "content": "y"}]}),
            )
            .await;
        assert_eq!(s, 403);
    }
);

both_backends!(
    streamed_completions_are_openai_sse,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let frames = event_stream(
            app.request(reqwest::Method::POST, &url(&bot), Some(&team.key))
                .json(
                    &json!({"stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "stream me a reply"}]}),
                ),
        )
        .await;
        assert_eq!(frames.last().map(String::as_str), Some("data: [DONE]"));
        let chunks: Vec<Value> = frames[..frames.len() - 1]
            .iter()
            .map(|f| serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        let id = chunks[0]["id"].as_str().unwrap();
        assert!(
            chunks
                .iter()
                .all(|c| c["id"] == id && c["object"] == "chat.completion.chunk")
        );
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "You said: stream me a reply");
        assert!(chunks.len() > 4, "streamed in pieces");
        let finish = chunks
            .iter()
            .find(|c| c["choices"][0]["finish_reason"] == "stop")
            .unwrap();
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
        // The turn is persisted with the streamed text.
        let ai = app
        .rows(
            &format!("SELECT m.content FROM messages m JOIN sessions s ON s.id = m.session_id WHERE s.external_id = '{id}' AND m.role = 'ai'"),
            &["content"],
        )
        .await;
        assert_eq!(ai[0]["content"], "You said: stream me a reply");
    }
);
