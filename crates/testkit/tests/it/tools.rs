//! LLM nodes calling the original's agent tools: state and data changes
//! visible through the API, errors fed back to the model, the round limit.

use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn tool_bot(
    app: &TestApp,
    team: &TestTeam,
    provider: &str,
    model: &str,
    params: Value,
) -> Uuid {
    let mut pipeline =
        serde_json::to_value(domain::pipeline::Pipeline::single_llm(provider, model, "")).unwrap();
    for (k, v) in params.as_object().unwrap() {
        pipeline["nodes"][1]["params"][k] = v.clone();
    }
    app.chatbot_with(team, "Bot", json!({"pipeline": pipeline}))
        .await
}

async fn say(app: &TestApp, team: &TestTeam, bot: Uuid, text: &str) -> (u16, Value) {
    app.post_json(
        &format!("/channels/api/{bot}/incoming_message"),
        &team.key,
        &json!({"message": text}),
    )
    .await
}

both_backends!(
    agent_tools_change_state_seen_through_the_api,
    async |app: &TestApp| {
        let team = app.team("a").await;
        app.provider(&team, "local", "builtin", None, None).await;
        let bot = tool_bot(
        app,
        &team,
        "local",
        "echo",
        json!({
            "prompt": "You help. Known: {participant_data}",
            "tools": ["set-session-state", "update-user-data", "increment-counter", "calculator", "get-session-state"]
        }),
    )
    .await;
        let (s, v) = say(
            app,
            &team,
            bot,
            "/tool set-session-state {\"key\": \"step\", \"value\": 2}\n\
         /tool update-user-data {\"key\": \"city\", \"value\": \"Oslo\"}\n\
         /tool increment-counter {\"counter\": \"visits\"}\n\
         /tool calculator {\"expression\": \"6 * 7\"}",
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let reply = v["response"].as_str().unwrap();
        assert!(reply.contains("calculator: 42"), "{reply}");
        assert!(reply.contains("increment-counter: The 'visits' counter has been successfully incremented. The new value is 1."), "{reply}");
        // Session state through the sessions API; participant data through the participants API.
        let sid = app.rows("SELECT external_id FROM sessions", &["id"]).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let detail = app
            .get_json(&format!("/api/sessions/{sid}/"), &team.key)
            .await;
        assert_eq!(detail["state"]["step"], 2, "{detail}");
        let parts = app.get_json("/api/participants", &team.key).await;
        let data = &parts["results"][0]["data"];
        assert!(data.to_string().contains("Oslo"), "{parts}");
        assert!(data.to_string().contains("_counter_visits"), "{parts}");
        // The next turn's tools see what the last one wrote.
        let (_, v) = say(
            app,
            &team,
            bot,
            "/tool get-session-state {\"key\": \"step\"}",
        )
        .await;
        assert_eq!(
            v["response"],
            "get-session-state: The value for key 'step' is: 2"
        );
        // Every call is in the trace: name, arguments, result, duration.
        let t = app
            .get_json(&format!("/api/sessions/{sid}/traces/"), &team.key)
            .await;
        let calls = &t["results"][0]["nodes"][1]["tool_calls"];
        assert_eq!(calls.as_array().unwrap().len(), 4, "{t}");
        assert_eq!(calls[3]["name"], "calculator");
        assert_eq!(calls[3]["arguments"], json!({"expression": "6 * 7"}));
        assert_eq!(calls[3]["result"], "42");
        assert_eq!(t["results"][0]["nodes"][1]["llm_calls"], 2);
    }
);

both_backends!(tool_errors_go_back_to_the_model, async |app: &TestApp| {
    let team = app.team("a").await;
    app.provider(&team, "local", "builtin", None, None).await;
    let bot = tool_bot(
        app,
        &team,
        "local",
        "echo",
        json!({"tools": ["set-session-state", "calculator"]}),
    )
    .await;
    let (s, v) = say(
        app,
        &team,
        bot,
        "/tool set-session-state {\"key\": \"remote_context\", \"value\": 1}\n/tool calculator {\"expression\": \"1/0\"}",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let reply = v["response"].as_str().unwrap();
    assert!(
        reply.contains("set-session-state: Cannot modify the 'remote_context' key"),
        "{reply}"
    );
    assert!(reply.contains("calculator: Error:"), "{reply}");
    let sid = app.rows("SELECT external_id FROM sessions", &["id"]).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = app
        .get_json(&format!("/api/sessions/{sid}/traces/"), &team.key)
        .await;
    let calls = &t["results"][0]["nodes"][1]["tool_calls"];
    assert!(
        calls[0]["error"].as_str().unwrap().contains("read-only"),
        "{t}"
    );
    assert!(calls[0]["result"].is_null());
    assert!(calls[1]["error"].is_string(), "{t}");
});

both_backends!(
    the_round_limit_ends_a_model_that_keeps_calling,
    async |app: &TestApp| {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\": \"1+1\"}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
        })))
        .mount(&fake)
        .await;
        let team = app.team("a").await;
        app.provider(&team, "oa", "openai", Some(&fake.uri()), Some("sk"))
            .await;
        let bot = tool_bot(
            app,
            &team,
            "oa",
            "gpt-4o-mini",
            json!({"tools": ["calculator"], "max_tool_rounds": 2}),
        )
        .await;
        let (s, _) = say(app, &team, bot, "add forever").await;
        assert!(s >= 400);
        // Three calls: two rounds of tools, then the third asking again.
        assert_eq!(fake.received_requests().await.unwrap().len(), 3);
        let err = app.rows("SELECT error FROM traces", &["error"]).await;
        let err = err[0]["error"].as_str().unwrap();
        assert!(err.contains("still calling tools after 2 rounds"), "{err}");
    }
);
