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

/// A bot on the built-in `echo` model (a team provider `local`) with these LLM params.
pub(crate) async fn local_bot(app: &TestApp, team: &TestTeam, params: Value) -> Uuid {
    app.provider(team, "local", "builtin", None, None).await;
    tool_bot(app, team, "local", "echo", params).await
}

pub(crate) async fn say(app: &TestApp, team: &TestTeam, bot: Uuid, text: &str) -> (u16, Value) {
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
        let bot = local_bot(app, &team, json!({
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
        let sid = app.only_session().await;
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
        let t = app.traces(&team).await;
        let calls = &t[0]["nodes"][1]["tool_calls"];
        assert_eq!(calls.as_array().unwrap().len(), 4, "{t:?}");
        assert_eq!(calls[3]["name"], "calculator");
        assert_eq!(calls[3]["arguments"], json!({"expression": "6 * 7"}));
        assert_eq!(calls[3]["result"], "42");
        assert_eq!(t[0]["nodes"][1]["llm_calls"], 2);
    }
);

both_backends!(tool_errors_go_back_to_the_model, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = local_bot(
        app,
        &team,
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
    let t = app.traces(&team).await;
    let calls = &t[0]["nodes"][1]["tool_calls"];
    assert!(
        calls[0]["error"].as_str().unwrap().contains("read-only"),
        "{t:?}"
    );
    assert!(calls[0]["result"].is_null());
    assert!(calls[1]["error"].is_string(), "{t:?}");
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
        // What the three calls used counts with the failed turn, and the trace keeps its calls.
        let out = app
            .rows(
                "SELECT quantity FROM usage_records WHERE service_kind = 'llm_output'",
                &["q"],
            )
            .await;
        assert_eq!(out[0]["q"], 9);
        assert_eq!(app.scalar("SELECT llm_calls FROM traces").await, 3);
    }
);

fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

both_backends!(
    reminder_tools_set_move_and_delete_schedules_that_fire,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = local_bot(app, &team, json!({
            "prompt": "Now: {current_datetime}",
            "tools": ["one-off-reminder", "recurring-reminder", "delete-reminder", "move-scheduled-message-date"]
        }),
    )
    .await;
        let (s, v) = say(
        app,
        &team,
        bot,
        "/tool one-off-reminder {\"datetime_due\": \"2030-01-01T09:00:00Z\", \"message\": \"Remind them to walk\", \"schedule_name\": \"Walk\"}\n\
         /tool recurring-reminder {\"datetime_due\": \"2030-01-02T08:00:00Z\", \"every\": 1, \"period\": \"days\", \"repetitions\": \"3\", \"message\": \"Drink water\", \"schedule_name\": \"Water\"}\n\
         /tool one-off-reminder {\"datetime_due\": \"2001-01-01T09:00:00Z\", \"message\": \"late\", \"schedule_name\": \"Past\"}",
    )
    .await;
        assert_eq!(s, 200, "{v}");
        let reply = v["response"].as_str().unwrap();
        assert_eq!(
            reply.matches("Success: scheduled message created").count(),
            2,
            "{reply}"
        );
        assert!(reply.contains("is in the past"), "{reply}");
        let rows = app
        .rows(
            "SELECT external_id, name, interval_seconds, repetitions FROM schedules ORDER BY id",
            &["id", "name", "interval", "repetitions"],
        )
        .await;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["interval"], 86_400);
        assert_eq!(rows[1]["repetitions"], 3);
        let (walk, water) = (
            rows[0]["id"].as_str().unwrap().to_string(),
            rows[1]["id"].as_str().unwrap().to_string(),
        );
        let (_, v) = say(
        app,
        &team,
        bot,
        &format!(
            "/tool move-scheduled-message-date {{\"message_id\": \"{walk}\", \"weekday\": 6, \"hour\": 10, \"minute\": 30, \"specified_date\": \"2030-01-05T00:00:00Z\"}}\n\
             /tool delete-reminder {{\"message_id\": \"{water}\"}}\n\
             /tool delete-reminder {{\"message_id\": \"nope\"}}"
        ),
    )
    .await;
        let reply = v["response"].as_str().unwrap();
        assert!(
            reply.contains("now triggers at 2030-01-05T10:30:00+00:00"),
            "{reply}"
        );
        assert!(reply.contains("successfully deleted"), "{reply}");
        assert!(reply.contains("Could not find this reminder"), "{reply}");
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM schedules WHERE status = 'cancelled'")
                .await,
            1
        );
        // The moved reminder fires at its new time, once; the deleted one never.
        let db = &app.domain.db;
        let before = app
            .scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
            .await;
        assert_eq!(
            domain::schedules::tick(db, t("2030-01-01T09:00:01Z"), 100)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            domain::schedules::tick(db, t("2030-01-05T10:30:01Z"), 100)
                .await
                .unwrap(),
            1
        );
        app.domain.job_signal.notify_waiters();
        app.settle().await;
        assert_eq!(
            domain::schedules::tick(db, t("2030-01-09T10:30:01Z"), 100)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
                .await,
            before + 1
        );
    }
);

both_backends!(
    a_streamed_reply_runs_its_tools_first,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = local_bot(app, &team, json!({"tools": ["calculator"]})).await;
        let r = app
            .request(
                reqwest::Method::POST,
                &format!("/api/openai/{bot}/chat/completions"),
                Some(&team.key),
            )
            .json(&json!({"stream": true, "messages": [
            {"role": "user", "content": "/tool calculator {\"expression\": \"2 + 2\"}"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let content: String = text
            .split("\n\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(content, "calculator: 4", "{text}");
        assert!(text.trim_end().ends_with("data: [DONE]"));
    }
);
