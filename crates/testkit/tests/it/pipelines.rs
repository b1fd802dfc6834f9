//! Pipelines as real graphs: routers, templates, merges, extraction,
//! history scopes and per-node traces, driven over the channels API.

use chatstudio_testkit::{Options, TestApp, TestTeam, both_backends};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn incoming(bot: Uuid) -> String {
    format!("/channels/api/{bot}/incoming_message")
}

async fn say(app: &TestApp, team: &TestTeam, bot: Uuid, text: &str) -> (u16, Value) {
    app.post_json(&incoming(bot), &team.key, &json!({"message": text}))
        .await
}

fn path_of(trace: &Value) -> Vec<String> {
    trace["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

fn node<'t>(trace: &'t Value, id: &str) -> &'t Value {
    trace["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {trace}"))
}

fn llm(id: &str, model: &str, prompt: &str) -> Value {
    json!({"id": id, "type": "llm", "params": {"provider": "local", "model": model, "prompt": prompt}})
}

async fn bot(app: &TestApp, team: &TestTeam, pipeline: Value) -> Uuid {
    app.provider(team, "local", "builtin", None, None).await;
    app.chatbot_with(team, "Bot", json!({"pipeline": pipeline}))
        .await
}

async fn reply_tags(app: &TestApp) -> Vec<String> {
    app.rows(
        "SELECT t.name FROM message_tags mt JOIN tags t ON t.id = mt.tag_id \
         WHERE t.category = 'bot_response' ORDER BY mt.id",
        &["name"],
    )
    .await
    .into_iter()
    .map(|r| r["name"].as_str().unwrap().to_string())
    .collect()
}

both_backends!(
    router_picks_each_branch_and_the_default,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let mut sales = llm("sales", "echo-system", "the sales team");
        sales["params"]["output_tag"] = json!("from-sales");
        let bot = bot(
        app,
        &team,
        json!({
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "r", "type": "router", "params": {
                    "provider": "local", "model": "echo", "prompt": "Route the user.",
                    "keywords": ["SALES", "SUPPORT"], "default_keyword_index": 1,
                    "tag_output_message": true}},
                sales,
                llm("support", "echo-system", "the support team"),
                {"id": "wrap", "type": "template", "params": {"template_string": "[{{ input }}]"}},
                {"id": "end", "type": "end"}
            ],
            "edges": [
                {"from": "start", "to": "r"},
                {"from": "r", "to": "sales", "handle": "output_0"},
                {"from": "r", "to": "support", "handle": "output_1"},
                {"from": "sales", "to": "wrap"}, {"from": "support", "to": "wrap"},
                {"from": "wrap", "to": "end"}
            ]
        }),
    )
    .await;
        // The built-in model picks the keyword the message names.
        let (s, v) = say(app, &team, bot, "I want to buy: sales please").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["response"], "[the sales team]");
        let (_, v) = say(app, &team, bot, "my SUPPORT ticket").await;
        assert_eq!(v["response"], "[the support team]");
        // Neither keyword: the default (SUPPORT).
        let (_, v) = say(app, &team, bot, "hello there").await;
        assert_eq!(v["response"], "[the support team]");
        assert_eq!(
            reply_tags(app).await,
            ["SALES", "from-sales", "SUPPORT", "SUPPORT"]
        );

        let t = app.traces(&team).await;
        assert_eq!(t.len(), 3);
        assert_eq!(path_of(&t[0]), ["start", "r", "sales", "wrap"]);
        assert_eq!(path_of(&t[1]), ["start", "r", "support", "wrap"]);
        assert_eq!(node(&t[0], "r")["route"], "SALES");
        assert_eq!(node(&t[2], "r")["route"], "SUPPORT");
        assert_eq!(node(&t[0], "r")["type"], "router");
        assert_eq!(node(&t[0], "sales")["output"], "the sales team");
        assert_eq!(node(&t[0], "wrap")["input"], "the sales team");
        assert_eq!(node(&t[0], "sales")["llm_calls"], 1);
        assert!(node(&t[0], "sales")["input_tokens"].as_i64().unwrap() > 0);
        assert_eq!(t[0]["status"], "success");
        assert_eq!(
            t[0]["input_message"]["content"],
            "I want to buy: sales please"
        );
        assert_eq!(t[0]["output_message"]["content"], "[the sales team]");
        // The router keeps its own history (node-scoped by default): input and keyword per turn.
        let rows = app
            .rows(
                "SELECT role, content FROM pipeline_history_messages \
             WHERE history_name = 'node:r' ORDER BY id",
                &["role", "content"],
            )
            .await;
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[1], json!({"role": "ai", "content": "SALES"}));
    }
);

both_backends!(static_router_on_each_data_source, async |app: &TestApp| {
    let team = app.team("a").await;
    let graph = |source: &str, key: &str| {
        json!({
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "classify", "type": "template", "params": {
                    "template_string": "{% if 'bonjour' in input %}fr{% else %}en{% endif %}"}},
                {"id": "r", "type": "static_router", "params": {
                    "data_source": source, "route_key": key, "keywords": ["EN", "FR"]}},
                {"id": "en", "type": "template", "params": {"template_string": "Hello!"}},
                {"id": "fr", "type": "template", "params": {"template_string": "Bonjour !"}},
                {"id": "end", "type": "end"}
            ],
            "edges": [
                {"from": "start", "to": "classify"}, {"from": "classify", "to": "r"},
                {"from": "r", "to": "en", "handle": "output_0"},
                {"from": "r", "to": "fr", "handle": "output_1"},
                {"from": "en", "to": "end"}, {"from": "fr", "to": "end"}
            ]
        })
    };
    // temp_state: another node's output this run.
    let b = bot(app, &team, graph("temp_state", "outputs.classify")).await;
    assert_eq!(
        say(app, &team, b, "bonjour").await.1["response"],
        "Bonjour !"
    );
    assert_eq!(say(app, &team, b, "hi").await.1["response"], "Hello!");

    // participant_data: a dotted path into the participant's data.
    let b = app
        .chatbot_with(
            &team,
            "P",
            json!({"pipeline": graph("participant_data", "profile.lang")}),
        )
        .await;
    assert_eq!(
        say(app, &team, b, "bonjour").await.1["response"],
        "Hello!",
        "missing key: default"
    );
    let participant = app.scalar("SELECT id FROM participants").await;
    let family = domain::chatbots::find_row(&app.domain, team.id, b)
        .await
        .unwrap()
        .family_id;
    domain::participants::data::set(
        &app.domain.db.write,
        team.id,
        domain::ParticipantId(participant),
        family,
        &json!({"profile": {"lang": "fr"}}),
    )
    .await
    .unwrap();
    assert_eq!(say(app, &team, b, "hi").await.1["response"], "Bonjour !");

    // session_state: set through the API.
    let b = app
        .chatbot_with(
            &team,
            "S",
            json!({"pipeline": graph("session_state", "lang")}),
        )
        .await;
    assert_eq!(say(app, &team, b, "x").await.1["response"], "Hello!");
    let row = domain::chatbots::find_row(&app.domain, team.id, b)
        .await
        .unwrap()
        .row_id;
    let sid = app
        .rows(
            &format!(
                "SELECT external_id FROM sessions WHERE chatbot_id = {}",
                row.0
            ),
            &["id"],
        )
        .await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/sessions/{sid}/update_state/"),
            Some(&team.key),
        )
        .json(&json!({"state": {"lang": "FR"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(say(app, &team, b, "x").await.1["response"], "Bonjour !");
});

both_backends!(a_merge_receives_every_input, async |app: &TestApp| {
    let team = app.team("a").await;
    let b = bot(
        app,
        &team,
        json!({
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "a", "type": "template", "params": {"template_string": "A:{{ input }}"}},
                {"id": "b", "type": "template", "params": {"template_string": "B:{{ input }}"}},
                {"id": "m", "type": "template", "params": {
                    "template_string": "{{ node_inputs | join(' + ') }} ({{ participant_details.platform }})"}},
                {"id": "end", "type": "end"}
            ],
            "edges": [
                {"from": "start", "to": "a"}, {"from": "start", "to": "b"},
                {"from": "a", "to": "m"}, {"from": "b", "to": "m"}, {"from": "m", "to": "end"}
            ]
        }),
    )
    .await;
    let (s, v) = say(app, &team, b, "x").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["response"], "A:x + B:x (api)");
    let t = app.traces(&team).await;
    let p = path_of(&t[0]);
    assert_eq!(p.len(), 4);
    assert_eq!(p[0], "start");
    assert_eq!(p[3], "m");
    assert_eq!(node(&t[0], "m")["input"], "A:x\n\nB:x");
});

both_backends!(
    a_failing_node_is_named_and_leaves_no_partial_state,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let b = bot(
            app,
            &team,
            chatstudio_testkit::fixtures::failing_template_pipeline(),
        )
        .await;
        let (s, v) = say(app, &team, b, "I am Ana").await;
        assert!((400..600).contains(&s), "{s} {v}");
        let t = app.traces(&team).await;
        assert_eq!(t[0]["status"], "error");
        let error = t[0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("node \"t\" (template): template_string:"),
            "{error}"
        );
        assert!(
            error.contains(
                "(unknown: nmae) (available variables: input, input_message_id, node_inputs"
            ),
            "{error}"
        );
        assert_eq!(path_of(&t[0]), ["start", "learn", "t"]);
        assert!(node(&t[0], "t")["error"].is_string());
        assert!(t[0]["output_message"].is_null());
        // The extraction ran, but nothing of the failed turn was written.
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM participant_data WHERE data LIKE '%Ana%'")
                .await,
            0
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
                .await,
            0
        );
    }
);

fn openai_json(content: &Value) -> Value {
    json!({
        "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
}

both_backends!(
    extraction_is_merged_into_participant_data,
    async |app: &TestApp| {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/chat/completions"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(openai_json(&json!({"name": "Ana", "city": null}))),
            )
            .mount(&fake)
            .await;
        let team = app.team("a").await;
        app.provider(&team, "oa", "openai", Some(&fake.uri()), Some("sk"))
            .await;
        let schema = json!({"name": "the participant's name", "city": "where they live"});
        let b = app
        .chatbot_with(
            &team,
            "X",
            json!({"pipeline": {
                "nodes": [
                    {"id": "start", "type": "start"},
                    {"id": "learn", "type": "update_participant_data", "params": {
                        "provider": "oa", "model": "gpt-4o-mini", "data_schema": schema.to_string(),
                        "key_name": "profile", "chunk_size": 10}},
                    {"id": "shape", "type": "extract_structured_data", "params": {
                        "provider": "oa", "model": "gpt-4o-mini", "data_schema": schema}},
                    {"id": "end", "type": "end"}
                ],
                "edges": [
                    {"from": "start", "to": "learn"}, {"from": "learn", "to": "shape"},
                    {"from": "shape", "to": "end"}
                ]
            }}),
        )
        .await;
        // 25 characters in chunks of 10: three extraction calls, then one for the second node.
        let (s, v) = say(app, &team, b, "My name is Ana, hi there!").await;
        assert_eq!(s, 200, "{v}");
        let reply: Value = serde_json::from_str(v["response"].as_str().unwrap()).unwrap();
        assert_eq!(reply, json!({"name": "Ana", "city": null}));
        let requests = fake.received_requests().await.unwrap();
        assert_eq!(requests.len(), 4);
        let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(body["messages"][1]["content"], "My name is");
        let format = &body["response_format"];
        assert_eq!(format["type"], "json_schema");
        assert_eq!(
            format["json_schema"]["schema"]["properties"]["name"]["description"],
            "the participant's name"
        );
        let data = app
            .rows("SELECT data FROM participant_data", &["data"])
            .await;
        let data: Value = serde_json::from_str(data[0]["data"].as_str().unwrap()).unwrap();
        assert_eq!(data, json!({"profile": {"name": "Ana"}}));
        let t = app.traces(&team).await;
        assert_eq!(node(&t[0], "learn")["llm_calls"], 3);
        assert_eq!(node(&t[0], "learn")["output"], "My name is Ana, hi there!");
        assert_eq!(t[0]["llm_calls"], 4);
    }
);

both_backends!(history_scopes, async |app: &TestApp| {
    let team = app.team("a").await;
    let hist = |id: &str, history: Value| {
        json!({"id": id, "type": "llm", "params": {
            "provider": "local", "model": "echo-history", "history": history}})
    };
    let b = bot(
        app,
        &team,
        json!({
            "nodes": [
                {"id": "start", "type": "start"},
                hist("own", json!({"type": "node"})),
                hist("none", json!({"type": "none"})),
                hist("first", json!({"type": "named", "name": "shared"})),
                hist("second", json!({"type": "named", "name": "shared", "mode": "max_history_length", "max_history_length": 2})),
                {"id": "out", "type": "template", "params": {"template_string":
                    "{{ temp_state.outputs.own }}\n--\n{{ temp_state.outputs.none }}\n--\n{{ input }}"}},
                {"id": "end", "type": "end"}
            ],
            "edges": [
                {"from": "start", "to": "own"}, {"from": "own", "to": "none"},
                {"from": "none", "to": "first"}, {"from": "first", "to": "second"},
                {"from": "second", "to": "out"}, {"from": "out", "to": "end"}
            ]
        }),
    )
    .await;
    say(app, &team, b, "one").await;
    let (_, v) = say(app, &team, b, "two").await;
    let reply = v["response"].as_str().unwrap().to_string();
    let parts: Vec<&str> = reply.split("\n--\n").collect();
    // The node's own history: its exchange of the first turn.
    assert_eq!(parts[0], "user: one\nassistant: user: one\nuser: two");
    // No history: the input only (the node before it's output).
    assert_eq!(parts[1], format!("user: {}", parts[0]));
    // The named history holds both nodes' exchanges; the second keeps only the last 2 messages.
    let shared = app
        .scalar(
            "SELECT COUNT(*) FROM pipeline_history_messages WHERE history_name = 'named:shared'",
        )
        .await;
    assert_eq!(shared, 8);
    assert!(
        parts[2].starts_with(
            "user: user: user: user: one\nassistant: user: user: user: user: one\nuser: user: user: user: one\n"
        ),
        "{reply}"
    );
    // The session's own transcript is unchanged by node histories: 2 human + 2 ai messages.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 4);
});

both_backends!(
    traces_of_another_team_are_not_found,
    async |app: &TestApp| {
        let a = app.team("a").await;
        let other = app.team("b").await;
        let b = app.echo_bot(&a).await;
        say(app, &a, b, "hi").await;
        let sid = app.only_session().await;
        let r = app
            .get(&format!("/api/sessions/{sid}/traces/"), &other.key)
            .await;
        assert_eq!(r.status(), 404);
        let t = app.traces(&a).await;
        assert_eq!(path_of(&t[0]), ["start", "llm"]);
        assert_eq!(node(&t[0], "llm")["output"], "You said: hi");
        assert_eq!(t[0]["nodes"][1]["cost"], "0.00000000");
    }
);

both_backends!(
    an_email_node_sends_through_smtp_after_the_turn,
    Options {
        smtp_sink: true,
        ..Default::default()
    },
    async |app: &TestApp| {
        let team = app.team("a").await;
        let graph = |recipients: &str| {
            json!({
                "nodes": [
                    {"id": "start", "type": "start"},
                    {"id": "mail", "type": "send_email", "params": {
                        "recipient_list": recipients,
                        "subject": "New message on {{ participant_details.platform }}",
                        "body": "They said: {{ input }}"}},
                    llm("reply", "echo", ""),
                    {"id": "end", "type": "end"}
                ],
                "edges": [
                    {"from": "start", "to": "mail"}, {"from": "mail", "to": "reply"},
                    {"from": "reply", "to": "end"}
                ]
            })
        };
        let b = bot(
            app,
            &team,
            graph("{{ participant_data.email | default('nobody@example.org') }}, ops@example.org"),
        )
        .await;
        let (s, v) = say(app, &team, b, "hello").await;
        assert_eq!(s, 200, "{v}");
        // The node passes its input through.
        assert_eq!(v["response"], "You said: hello");
        let mails = app.smtp().wait_for(1).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].to, ["nobody@example.org", "ops@example.org"]);
        assert_eq!(mails[0].from, "bot@chatstudio.test");
        assert_eq!(
            mails[0].header("Subject").as_deref(),
            Some("New message on api")
        );
        assert!(
            mails[0].body().contains("They said: hello"),
            "{:?}",
            mails[0]
        );
        app.wait_until(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'email.send' AND status = 'succeeded'",
            1,
        )
        .await;

        // A bad address fails the turn at the node; nothing is queued.
        let bad = app
            .chatbot_with(
                &team,
                "Bad",
                json!({"pipeline": graph("ops@example.org, {{ input }}")}),
            )
            .await;
        let (s, _) = say(app, &team, bad, "not an address").await;
        assert!(s >= 400);
        let errors = app
            .rows(
                "SELECT error FROM traces WHERE status = 'error'",
                &["error"],
            )
            .await;
        let error = errors[0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("node \"mail\" (send_email): recipient_list: \"not\""),
            "{error}"
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'email.send'")
                .await,
            1
        );
    }
);
