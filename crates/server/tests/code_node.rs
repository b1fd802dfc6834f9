#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests and their harness fail loudly"
)]
//! Python nodes end to end: pipelines with `code` nodes driven over HTTP,
//! their code running in sandbox workers of the real binary.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::process::Binary;
use testkit::{Options, TestApp, TestTeam, both_backends, code_workers};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn with_code() -> Options {
    Options {
        code: code_workers(env!("CARGO_BIN_EXE_chatstudio"), 2),
        ..Options::default()
    }
}

fn code(id: &str, source: &str) -> Value {
    json!({"id": id, "type": "code", "params": {"code": source}})
}

/// A chain start → nodes… → end.
fn chain(nodes: Vec<Value>) -> Value {
    let mut all = vec![json!({"id": "start", "type": "start"})];
    all.extend(nodes);
    all.push(json!({"id": "end", "type": "end"}));
    let edges: Vec<Value> = all
        .windows(2)
        .map(|w| json!({"from": w[0]["id"], "to": w[1]["id"]}))
        .collect();
    json!({"nodes": all, "edges": edges})
}

async fn bot(app: &TestApp, team: &TestTeam, pipeline: Value) -> Uuid {
    app.chatbot_with(team, "Bot", json!({"pipeline": pipeline}))
        .await
}

/// A chatbot whose pipeline is one code node.
async fn code_bot(app: &TestApp, team: &TestTeam, id: &str, source: &str) -> Uuid {
    bot(app, team, chain(vec![code(id, source)])).await
}

async fn say(app: &TestApp, team: &TestTeam, bot: Uuid, text: &str) -> (u16, Value) {
    app.api_message(team, bot, text).await
}

fn node<'t>(trace: &'t Value, id: &str) -> &'t Value {
    trace["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {trace}"))
}

async fn participant_data(app: &TestApp, team: &TestTeam) -> Value {
    let parts = app.get_json("/api/participants", &team.key).await;
    match &parts["results"][0]["data"][0]["data"] {
        Value::Null => json!({}),
        data => data.clone(),
    }
}

async fn session_state(app: &TestApp, team: &TestTeam) -> Value {
    let sid = app.only_session().await;
    app.get_json(&format!("/api/sessions/{sid}/"), &team.key)
        .await["state"]
        .clone()
}

/// The newest trace of the newest session.
async fn newest_trace(app: &TestApp, team: &TestTeam) -> Value {
    let sid = app
        .rows("SELECT external_id FROM sessions ORDER BY id DESC", &["id"])
        .await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.get_json(&format!("/api/sessions/{sid}/traces/"), &team.key)
        .await["results"][0]
        .clone()
}

async fn ai_messages(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
        .await
}

const SETTER: &str = r#"
def main(input, **kwargs):
    set_participant_data_key("name", input)
    set_participant_data({"lang": "pt"})
    append_to_participant_data_key("seen", input)
    append_to_participant_data_key("seen", ["a", "b"])
    increment_participant_data_key("visits")
    increment_participant_data_key("visits", 2)
    set_session_state_key("step", 3)
    set_temp_state_key("shout", input.upper())
    add_message_tag("greeted")
    add_session_tag("vip")
    print("set", input, sep="=")
    return "set:" + input
"#;

const READER: &str = r#"
def main(input, **kwargs):
    data = get_participant_data()
    return json.dumps({
        "input": input,
        "node_inputs": kwargs["node_inputs"],
        "shout": get_temp_state_key("shout"),
        "user_input": get_temp_state_key("user_input"),
        "setter": get_node_output("setter"),
        "missing": get_node_output("nope"),
        "path": get_node_path("reader"),
        "step": get_session_state_key("step"),
        "visits": data["visits"],
        "seen": data["seen"],
        "lang": data["lang"],
        "schedules": get_participant_schedules(),
    }, sort_keys=True)
"#;

both_backends!(
    helpers_change_state_that_commits_with_the_turn,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let b = bot(
            app,
            &team,
            chain(vec![code("setter", SETTER), code("reader", READER)]),
        )
        .await;
        let (s, v) = say(app, &team, b, "ana").await;
        assert_eq!(s, 200, "{v}");
        let out: Value = serde_json::from_str(v["response"].as_str().unwrap()).unwrap();
        assert_eq!(
            out,
            json!({
                "input": "set:ana", "node_inputs": ["set:ana"], "shout": "ANA",
                "user_input": "ana", "setter": "set:ana", "missing": null,
                "path": ["start", "setter", "reader"], "step": 3, "visits": 3,
                "seen": ["ana", "a", "b"], "lang": "pt", "schedules": []
            })
        );
        let data = participant_data(app, &team).await;
        assert_eq!(data["name"], "ana", "{data}");
        assert_eq!(data["visits"], 3);
        assert_eq!(session_state(app, &team).await["step"], 3);
        let tags = app
            .rows(
                "SELECT t.name FROM message_tags mt JOIN tags t ON t.id = mt.tag_id \
                 WHERE t.category = 'bot_response'",
                &["name"],
            )
            .await;
        assert_eq!(tags, [json!({"name": "greeted"})]);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM session_tags st JOIN tags t ON t.id = st.tag_id WHERE t.name = 'vip'")
                .await,
            1
        );
        // print output is kept with the node's trace.
        let t = app.traces(&team).await;
        assert_eq!(node(&t[0], "setter")["console_output"], "set=ana\n");
        assert!(node(&t[0], "reader")["console_output"].is_null());
        // The next turn sees what this one stored.
        let (_, v) = say(app, &team, b, "bo").await;
        let out: Value = serde_json::from_str(v["response"].as_str().unwrap()).unwrap();
        assert_eq!(out["visits"], 6);
        assert_eq!(out["seen"], json!(["ana", "a", "b", "bo", "a", "b"]));
    }
);

both_backends!(
    routes_and_the_originals_examples,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        // Route on a participant-data value: a code node stores it, a static router reads it.
        let pipeline = json!({
            "nodes": [
                {"id": "start", "type": "start"},
                code("score", "def main(input, **kwargs):\n    score = sum(len(w) for w in input.split())\n    set_participant_data_key('level', 'high' if score > 10 else 'low')\n    return str(score)\n"),
                {"id": "route", "type": "static_router", "params": {
                    "data_source": "participant_data", "route_key": "level",
                    "keywords": ["LOW", "HIGH"], "default_keyword_index": 0}},
                code("low", "def main(input, **kwargs):\n    return 'low ' + input\n"),
                code("high", "def main(input, **kwargs):\n    return f\"high {input} via {get_selected_route('route')} {get_all_routes()}\"\n"),
                {"id": "end", "type": "end"}
            ],
            "edges": [
                {"from": "start", "to": "score"}, {"from": "score", "to": "route"},
                {"from": "route", "to": "low", "handle": "output_0"},
                {"from": "route", "to": "high", "handle": "output_1"},
                {"from": "low", "to": "end"}, {"from": "high", "to": "end"}
            ]
        });
        let b = bot(app, &team, pipeline).await;
        let (_, v) = say(app, &team, b, "hi there").await;
        assert_eq!(v["response"], "low 7");
        let (_, v) = say(app, &team, b, "a considerably longer message").await;
        assert_eq!(v["response"], "high 26 via HIGH {'route': 'HIGH'}");
        // The original's tests: default code passes the input, no return is "None",
        // the stand-ins for modules the interpreter lacks, a set of ints.
        let b = bot(
            app,
            &team,
            chain(vec![
                json!({"id": "default", "type": "code", "params": {"code": ""}}),
                code("stand_ins", "import random\nimport time as t\nfrom string import digits\ndef main(input, **kwargs):\n    n = random.randint(1, 6)\n    assert 1 <= n <= 6\n    assert t.time() > 1e9\n    assert random.choice([input]) == input\n    return input + digits[:3]\n"),
                code("quiz", "def main(input, **kwargs):\n    quiz = [{'id': 1}, {'id': 2}, {'id': 3}, {'id': 4}]\n    asked = [1, '2', 2]\n    seen = set()\n    for q in asked:\n        try:\n            seen.add(int(q))\n        except:\n            pass\n    left = [q['id'] for q in quiz if q['id'] not in seen]\n    return input + ' ' + ','.join([str(q) for q in left]) + f' - {seen}'\n"),
                code("none", "def main(input, **kwargs):\n    'nothing'\n"),
            ]),
        )
        .await;
        let (s, v) = say(app, &team, b, "x").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["response"], "None");
        let t = newest_trace(app, &team).await;
        assert_eq!(node(&t, "quiz")["output"], "x012 3,4 - {1, 2}");
    }
);

both_backends!(
    abort_and_wait_end_the_run,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        // Abort: the message is the reply (tagged); the aborting node's own
        // changes are dropped, an earlier node's stand; later nodes never run.
        let b = bot(
            app,
            &team,
            chain(vec![
                code("before", "def main(input, **kwargs):\n    set_participant_data_key('before', 1)\n    return input\n"),
                code("stop", "def main(input, **kwargs):\n    set_participant_data_key('during', 1)\n    if input == 'stop':\n        try:\n            abort_with_message('Sorry, we stop here.', tag_name='aborted')\n        except Exception:\n            return 'caught'\n    return input\n"),
                code("after", "def main(input, **kwargs):\n    return 'after ' + input\n"),
            ]),
        )
        .await;
        let (s, v) = say(app, &team, b, "stop").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["response"], "Sorry, we stop here.");
        let data = participant_data(app, &team).await;
        assert_eq!(data, json!({"before": 1}));
        let t = app.traces(&team).await;
        assert_eq!(t[0]["path"], json!(["start", "before", "stop"]));
        let tags = app
            .rows(
                "SELECT t.name FROM message_tags mt JOIN tags t ON t.id = mt.tag_id \
                 WHERE t.category = 'bot_response'",
                &["name"],
            )
            .await;
        assert_eq!(tags, [json!({"name": "aborted"})]);
        let (_, v) = say(app, &team, b, "go").await;
        assert_eq!(v["response"], "after go");
    }
);

both_backends!(
    waiting_nodes_send_no_reply,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        // A merge node requiring a branch the router did not take waits: no reply.
        let pipeline = json!({
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "route", "type": "static_router", "params": {
                    "data_source": "temp_state", "route_key": "user_input",
                    "keywords": ["A", "B"], "default_keyword_index": 1}},
                {"id": "a", "type": "template", "params": {"template_string": "from a"}},
                {"id": "b", "type": "template", "params": {"template_string": "from b"}},
                code("merge", "def main(input, **kwargs):\n    require_node_outputs('a')\n    return 'merged ' + input\n"),
                {"id": "end", "type": "end"}
            ],
            "edges": [
                {"from": "start", "to": "route"},
                {"from": "route", "to": "a", "handle": "output_0"},
                {"from": "route", "to": "b", "handle": "output_1"},
                {"from": "a", "to": "merge"}, {"from": "b", "to": "merge"},
                {"from": "merge", "to": "end"}
            ]
        });
        let b = bot(app, &team, pipeline).await;
        let (s, v) = say(app, &team, b, "a").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["response"], "merged from a");
        let (s, v) = say(app, &team, b, "b").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["response"], "");
        assert_eq!(ai_messages(app).await, 1, "the waiting run stored no reply");
        // wait_for_next_input likewise, even when caught.
        let b = code_bot(app, &team, "w", "def main(input, **kwargs):\n    try:\n        wait_for_next_input()\n    except Exception:\n        pass\n    return 'never'\n").await;
        let (s, v) = say(app, &team, b, "x").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["response"], "");
        assert_eq!(ai_messages(app).await, 1);
    }
);

both_backends!(
    failing_code_changes_nothing_and_names_the_line,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let b = code_bot(app, &team, "bad", "def main(input, **kwargs):\n    set_participant_data_key('x', 1)\n    add_session_tag('t')\n    print('about to fail')\n    return 1 / 0\n").await;
        let (s, v) = say(app, &team, b, "hi").await;
        assert!((400..600).contains(&s), "{s} {v}");
        let t = app.traces(&team).await;
        assert_eq!(t[0]["status"], "error");
        let error = t[0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("node \"bad\" (code): ZeroDivisionError: division by zero (line 5)"),
            "{error}"
        );
        assert!(error.contains(">>>   5:     return 1 / 0"), "{error}");
        assert_eq!(node(&t[0], "bad")["console_output"], "about to fail\n");
        assert_eq!(participant_data(app, &team).await, json!({}));
        assert_eq!(app.scalar("SELECT COUNT(*) FROM session_tags").await, 0);
        assert_eq!(ai_messages(app).await, 0);
    }
);

/// The run's error in the trace of the newest session.
async fn last_error(app: &TestApp, team: &TestTeam) -> String {
    newest_trace(app, team).await["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

both_backends!(
    limits_and_escapes_end_the_node_not_the_server,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let cases = [
            (
                json!({"code": "def main(input, **kwargs):\n    while True:\n        pass\n", "cpu_seconds": 0.2}),
                "time limit exceeded",
            ),
            (
                json!({"code": "def main(input, **kwargs):\n    def f(n):\n        return f(n + 1)\n    return f(0)\n"}),
                "RecursionError",
            ),
            (
                json!({"code": "def main(input, **kwargs):\n    return len('x' * (200 * 1024 * 1024))\n", "memory_mb": 16}),
                "memory limit",
            ),
            (
                json!({"code": "def main(input, **kwargs):\n    chunks = []\n    while True:\n        chunks.append('y' * 65536 + str(len(chunks)))\n", "memory_mb": 16}),
                "memory limit",
            ),
            (
                json!({"code": "def main(input, **kwargs):\n    n = 0\n    while True:\n        n += 1\n", "wall_seconds": 0.5, "cpu_seconds": 10}),
                "wall-clock limit",
            ),
            (
                json!({"code": "def main(input, **kwargs):\n    return open('/etc/passwd').read()\n"}),
                "PermissionError",
            ),
            (
                json!({"code": "def main(input, **kwargs):\n    return __import__('os').environ\n"}),
                "NameError",
            ),
            (
                json!({"code": "def main(input, **kwargs):\n    return input.__class__.__mro__\n"}),
                "AttributeError",
            ),
        ];
        for (params, expected) in cases {
            let b = bot(
                app,
                &team,
                chain(vec![json!({"id": "c", "type": "code", "params": params})]),
            )
            .await;
            let started = Instant::now();
            let (s, v) = say(app, &team, b, "hi").await;
            assert!((400..600).contains(&s), "{params}: {s} {v}");
            assert!(started.elapsed() < Duration::from_secs(20), "{params}");
            let error = last_error(app, &team).await;
            assert!(error.contains(expected), "{params}: {error}");
        }
        // Workers were killed and replaced; code still runs.
        let b = code_bot(
            app,
            &team,
            "ok",
            "def main(input, **kwargs):\n    return input * 2\n",
        )
        .await;
        let (s, v) = say(app, &team, b, "ok").await;
        assert_eq!((s, v["response"].clone()), (200, json!("okok")), "{v}");
    }
);

both_backends!(
    http_goes_through_the_outbound_rules,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/score"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"score": 7})))
            .mount(&api)
            .await;
        Mock::given(method("POST"))
            .and(path("/echo"))
            .respond_with(|r: &wiremock::Request| {
                ResponseTemplate::new(201).set_body_raw(r.body.clone(), "application/json")
            })
            .mount(&api)
            .await;
        let source = format!(
            "def main(input, **kwargs):\n    r = http.get('{u}/score', params={{'q': input}})\n    p = http.post('{u}/echo', json={{'n': r['json']['score'] + 1}})\n    try:\n        http.get('http://10.1.2.3/x')\n        refused = 'no'\n    except Exception as e:\n        refused = str(e)\n    return json.dumps([r['status_code'], r['is_success'], p['status_code'], p['json'], refused])\n",
            u = api.uri()
        );
        let b = code_bot(app, &team, "h", &source).await;
        let (s, v) = say(app, &team, b, "hi").await;
        assert_eq!(s, 200, "{v}");
        let out: Value = serde_json::from_str(v["response"].as_str().unwrap()).unwrap();
        assert_eq!(out[0], 200);
        assert_eq!(out[1], true);
        assert_eq!(out[2], 201);
        assert_eq!(out[3], json!({"n": 8}));
        assert!(
            out[4].as_str().unwrap().contains("private address"),
            "{out}"
        );
        let hit = &api.received_requests().await.unwrap()[0];
        assert_eq!(hit.url.query(), Some("q=hi"));
    }
);

both_backends!(
    generated_files_are_attached_to_the_reply,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let b = code_bot(app, &team, "report", "def main(input, **kwargs):\n    add_file_attachment('report.csv', ('name\\n' + input + '\\n').encode())\n    return 'see the file'\n").await;
        let (s, v) = say(app, &team, b, "ana").await;
        assert_eq!(s, 200, "{v}");
        let sid = app.only_session().await;
        let detail = app
            .get_json(&format!("/api/sessions/{sid}/"), &team.key)
            .await;
        let reply = detail["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "assistant")
            .unwrap()
            .clone();
        let files = reply["attachments"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{reply}");
        assert_eq!(files[0]["name"], "report.csv");
        let url = files[0]["content_url"].as_str().unwrap();
        let body = testkit::http_client()
            .get(url)
            .header("X-api-key", &team.key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "name\nana\n");
    }
);

both_backends!(
    a_hundred_concurrent_turns_run_code,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let b = code_bot(app, &team, "sq", "def main(input, **kwargs):\n    n = int(input)\n    get_participant_data()\n    return str(sum(i * i for i in range(n)))\n").await;
        let turns = (0..100).map(|i| {
            let team = &team;
            async move {
                let (s, v) = app
                    .post_json(
                        &format!("/channels/api/{b}/incoming_message"),
                        &team.key,
                        &json!({"message": i.to_string()}),
                    )
                    .await;
                (i, s, v)
            }
        });
        for (i, s, v) in futures_util::future::join_all(turns).await {
            assert_eq!(s, 200, "{v}");
            let expected: i64 = (0..i).map(|x| x * x).sum();
            assert_eq!(v["response"], expected.to_string(), "turn {i}");
        }
    }
);

both_backends!(
    code_is_checked_when_the_chatbot_is_saved,
    with_code(),
    async |app: &TestApp| {
        let cli = Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app);
        cli.ok(&["team", "create", "acme"]);
        let refused = |source: &str| {
            let body = json!({
                "name": "Py",
                "config": {"pipeline": chain(vec![json!({"id": "py", "type": "code", "params": {"code": source}})])},
            });
            let (ok, _, err) =
                cli.apply("acme", "bot.yaml", &serde_json::to_string(&body).unwrap());
            assert!(!ok, "{source} was accepted");
            err
        };
        let err = refused("import os\ndef main(input, **kwargs):\n    return 1\n");
        assert!(
            err.contains("params.code: line 1: Importing 'os' is not allowed"),
            "{err}"
        );
        let err = refused("def main(input, **kwargs):\n    import socket\n    return 1\n");
        assert!(err.contains("line 2: Importing 'socket'"), "{err}");
        let err = refused("def main(input):\n    return 1\n");
        assert!(err.contains("main(input, **kwargs)"), "{err}");
        let err = refused("def main(input, **kwargs):\n    return (\n");
        assert!(err.contains("params.code: line"), "{err}");
        let err = refused(
            "def main(input, **kwargs):\n    set_session_state_key('outputs', 1)\n    return 1\n",
        );
        assert!(
            err.contains("line 2: The key 'outputs' is a reserved"),
            "{err}"
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM chatbots").await, 0);
    }
);

both_backends!(
    schedules_session_end_and_read_only_temp_state,
    with_code(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        app.provider(&team, "local", "builtin", None, None).await;
        // The schedules a reminder tool made in one turn, read by code in the next.
        let b = bot(
            app,
            &team,
            chain(vec![
                json!({"id": "agent", "type": "llm", "params": {"provider": "local", "model": "echo", "prompt": "Now: {current_datetime}", "tools": ["one-off-reminder"]}}),
                code("list", "def main(input, **kwargs):\n    return json.dumps([[s['name'], s['prompt']] for s in get_participant_schedules()])\n"),
            ]),
        )
        .await;
        let (s, v) = say(
            app,
            &team,
            b,
            "/tool one-off-reminder {\"datetime_due\": \"2030-01-01T09:00:00Z\", \"message\": \"Walk now\", \"schedule_name\": \"Walk\"}",
        )
        .await;
        assert_eq!((s, v["response"].clone()), (200, json!("[]")), "{v}");
        let (_, v) = say(app, &team, b, "hi").await;
        assert_eq!(v["response"], "[[\"Walk\", \"Walk now\"]]");
        // Temp state's own keys are read-only; the error can be caught.
        let b = code_bot(app, &team, "ro", "def main(input, **kwargs):\n    try:\n        set_temp_state_key('outputs', 1)\n    except ValueError as e:\n        return str(e)\n    return 'set'\n").await;
        let (_, v) = say(app, &team, b, "x").await;
        assert_eq!(
            v["response"],
            "Cannot set the 'outputs' key of the temporary state"
        );
        // end_session() ends the session after the turn, by the bot.
        let b = code_bot(
            app,
            &team,
            "bye",
            "def main(input, **kwargs):\n    end_session()\n    return 'Goodbye'\n",
        )
        .await;
        let (_, v) = say(app, &team, b, "bye").await;
        assert_eq!(v["response"], "Goodbye");
        let ended = app
            .rows(
                "SELECT status FROM sessions ORDER BY id DESC LIMIT 1",
                &["status"],
            )
            .await;
        assert_eq!(ended, [json!({"status": "pending-review"})], "{ended:?}");
    }
);

both_backends!(
    a_reply_s_files_go_out_on_telegram,
    Options {
        fake_telegram: true,
        ..with_code()
    },
    async |app: &TestApp| {
        let tg = app.telegram();
        for m in ["sendMessage", "sendDocument"] {
            Mock::given(method("POST"))
                .and(path(format!("/bot42:T0KEN/{m}")))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"message_id": 7, "date": 0, "chat": {"id": 5, "type": "private"}}})))
                .mount(tg)
                .await;
        }
        let team = app.team("a").await;
        let b = code_bot(app, &team, "report", "def main(input, **kwargs):\n    add_file_attachment('report.csv', ('name\\n' + input + '\\n').encode())\n    return 'see the file'\n").await;
        let ch = domain::channels::telegram::add(
            &app.domain.db.write,
            &app.domain.secrets,
            b,
            "42:T0KEN",
            "hook-secret",
            json!({"username": "ReportBot"}),
        )
        .await
        .unwrap()
        .id;
        let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 0,
            "from": {"id": 5, "first_name": "Ana"}, "chat": {"id": 5, "type": "private"}, "text": "ana"}});
        let r = app
            .client
            .post(app.url(&format!("/channels/telegram/{ch}")))
            .header("X-Telegram-Bot-Api-Secret-Token", "hook-secret")
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        app.settle().await;
        let got = tg.received_requests().await.unwrap();
        let paths: Vec<&str> = got.iter().map(|r| r.url.path()).collect();
        // The text first, then the file it carries.
        assert_eq!(
            paths,
            ["/bot42:T0KEN/sendMessage", "/bot42:T0KEN/sendDocument"]
        );
        let doc = String::from_utf8_lossy(&got[1].body);
        assert!(doc.contains("filename=\"report.csv\""), "{doc}");
        assert!(doc.contains("name\nana\n"), "{doc}");
    }
);

both_backends!(
    twilio_takes_a_reply_s_files_by_link,
    Options {
        fake_whatsapp: true,
        public_url: Some("http://files.example.test".into()),
        ..with_code()
    },
    async |app: &TestApp| {
        let fake = app.whatsapp();
        Mock::given(method("POST"))
            .and(path("/2010-04-01/Accounts/AC1/Messages.json"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1"})))
            .mount(fake)
            .await;
        let team = app.team("a").await;
        let b = code_bot(app, &team, "report", "def main(input, **kwargs):\n    add_file_attachment('report.csv', b'a,b\\n')\n    return 'see the file'\n").await;
        let t = domain::teams::by_slug(&app.domain.db.read, &team.slug)
            .await
            .unwrap();
        let creds = domain::messaging::Credentials::Twilio {
            account_sid: "AC1".into(),
            auth_token: "tok".into(),
            template_content_sid: None,
        };
        domain::messaging::add(&app.domain.db.write, &app.domain.secrets, t.id, "tw", creds)
            .await
            .unwrap();
        let access =
            domain::messaging::by_name(&app.domain.db.read, &app.domain.secrets, t.id, "tw")
                .await
                .unwrap();
        domain::channels::whatsapp::add(
            &app.domain.db.write,
            b,
            &access,
            "+14155550100",
            "+14155550100",
        )
        .await
        .unwrap();
        let params: Vec<(String, String)> = [
            ("MessageSid", "SM9"),
            ("From", "whatsapp:+27821234567"),
            ("To", "whatsapp:+14155550100"),
            ("Body", "go"),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // Signed for the URL Twilio calls: the public one.
        let sig = channels::twilio::sign(
            "tok",
            "http://files.example.test/channels/twilio/incoming_message",
            &params,
        );
        let body: String = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(':', "%3A")))
            .collect::<Vec<_>>()
            .join("&");
        let r = app
            .client
            .post(app.url("/channels/twilio/incoming_message"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        app.settle().await;
        let sends: Vec<Vec<(String, String)>> = fake
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| form_urlencoded::parse(&r.body).into_owned().collect())
            .collect();
        assert_eq!(sends.len(), 2, "{sends:?}");
        let field = |i: usize, k: &str| {
            sends[i]
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(field(0, "Body").as_deref(), Some("see the file"));
        // Twilio takes the file by a link to this instance.
        let media = field(1, "MediaUrl").unwrap();
        let link = media
            .strip_prefix("http://files.example.test")
            .unwrap()
            .to_string();
        let link = link.as_str();
        assert!(link.starts_with("/files/shared/"), "{link}");
        let r = app.client.get(app.url(link)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"a,b\n");
        let forged = format!("{link}x");
        assert_eq!(
            app.client
                .get(app.url(&forged))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
);
