#![expect(clippy::unwrap_used, reason = "tests and their harness fail loudly")]
//! Static event triggers end to end: configured in chatbot files, fired by
//! what happens in sessions, each firing once, read back with `events log`.

use serde_json::{Value, json};
use testkit::process::Binary;
use testkit::{TestApp, TestTeam, both_backends};
use uuid::Uuid;

fn template_pipeline() -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "template", "params": {"template_string": "got {{ input }}"}},
            {"id": "end", "type": "end"}
        ],
        "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}]
    })
}

async fn bot(app: &TestApp, team: &TestTeam, pipeline: Value, events: Value) -> Uuid {
    app.chatbot_with(team, "Bot", json!({"pipeline": pipeline, "events": events}))
        .await
}

async fn say(app: &TestApp, team: &TestTeam, bot: Uuid, text: &str) -> (u16, Value) {
    app.api_message(team, bot, text).await
}

/// The events log as `chatstudio events log --json` prints it.
fn log(app: &TestApp, bot: Uuid) -> Vec<Value> {
    let cli = Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app);
    let out = cli.ok(&["events", "log", "--chatbot", &bot.to_string(), "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["results"].as_array().unwrap().clone()
}

fn fired<'l>(log: &'l [Value], on: &str) -> Vec<&'l Value> {
    log.iter().filter(|f| f["on"] == on).collect()
}

async fn participant_data(app: &TestApp, team: &TestTeam) -> Value {
    let parts = app.get_json("/api/participants", &team.key).await;
    parts["results"][0]["data"][0]["data"].clone()
}

both_backends!(
    static_triggers_fire_once_each_with_their_actions,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let b = bot(
            app,
            &team,
            template_pipeline(),
            json!([
                {"on": "new_human_message", "action": {"type": "update_participant_data", "data": {"seen": true}}},
                {"on": "new_bot_message", "action": {"type": "log", "message": "replied"}},
                {"on": "conversation_start", "action": {"type": "schedule_message", "name": "Welcome", "prompt": "Say welcome", "delay_seconds": 3600}},
                {"on": "participant_joined", "action": {"type": "update_participant_data", "data": {"joined": 1}}},
                {"on": "conversation_end:user", "action": {"type": "log", "message": "they reset"}},
                {"on": "conversation_end:bot", "action": {"type": "log", "message": "never"}},
                {"on": "new_human_message", "action": {"type": "log"}, "active": false}
            ]),
        )
        .await;
        let (s, v) = say(app, &team, b, "one").await;
        assert_eq!(s, 200, "{v}");
        app.settle().await;
        assert_eq!(
            participant_data(app, &team).await,
            json!({"seen": true, "joined": 1})
        );
        let schedules = app
            .rows(
                "SELECT name, prompt, status FROM schedules",
                &["name", "prompt", "status"],
            )
            .await;
        assert_eq!(
            schedules,
            [json!({"name": "Welcome", "prompt": "Say welcome", "status": "scheduled"})]
        );
        say(app, &team, b, "two").await;
        // A reset ends the session by the user and starts another.
        say(app, &team, b, "/reset").await;
        say(app, &team, b, "three").await;
        app.settle().await;
        let l = log(app, b);
        assert!(l.iter().all(|f| f["status"] == "succeeded"), "{l:?}");
        assert_eq!(fired(&l, "new_human_message").len(), 3, "{l:?}");
        assert_eq!(fired(&l, "new_bot_message").len(), 3);
        assert_eq!(fired(&l, "new_bot_message")[0]["done"], "logged: replied");
        assert_eq!(fired(&l, "conversation_start").len(), 2, "one per session");
        assert_eq!(
            fired(&l, "participant_joined").len(),
            1,
            "once per participant"
        );
        assert_eq!(fired(&l, "conversation_end:user").len(), 1);
        assert_eq!(
            fired(&l, "conversation_end:user")[0]["done"],
            "logged: they reset"
        );
        assert!(fired(&l, "conversation_end:bot").is_empty());
        assert_eq!(l.len(), 10, "{l:?}");
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM schedules").await,
            2,
            "a welcome per session"
        );
    }
);

/// An echo-model pipeline (`You said: …`), so `prompt_bot` has an LLM to write with.
fn echo_pipeline() -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "l", "type": "llm", "params": {"provider": "local", "model": "echo", "prompt": "You help."}},
            {"id": "end", "type": "end"}
        ],
        "edges": [{"from": "start", "to": "l"}, {"from": "l", "to": "end"}]
    })
}

both_backends!(
    every_trigger_runs_every_action_once,
    async |app: &TestApp| {
        let team = app.team("a").await;
        app.provider(&team, "local", "builtin", None, None).await;
        let actions = |on: &str| {
            vec![
                json!({"type": "log", "message": on}),
                json!({"type": "update_participant_data", "data": {on: true}}),
                json!({"type": "schedule_message", "name": on, "prompt": "Check in", "delay_seconds": 3600}),
                json!({"type": "prompt_bot", "instruction": format!("Say {on}")}),
                json!({"type": "start_pipeline", "pipeline": template_pipeline(), "input": "last_message"}),
                json!({"type": "end_conversation"}),
            ]
        };
        let kinds = [
            "conversation_start",
            "participant_joined",
            "new_human_message",
            "new_bot_message",
            "conversation_end",
            "last_timeout",
        ];
        for on in kinds {
            let mut events: Vec<Value> = actions(on)
                .into_iter()
                .map(|a| json!({"on": on, "action": a}))
                .collect();
            events.push(json!({"timeout": {"seconds": 60, "times": 1}, "action": {"type": "log"}}));
            let b = bot(app, &team, echo_pipeline(), json!(events)).await;
            // Published, so its timeout arms.
            app.publish(&team, b, "v1", true).await;
            let t0 = chrono::Utc::now();
            let (s, v) = say(app, &team, b, "hello").await;
            assert_eq!(s, 200, "{on}: {v}");
            if on == "conversation_end" {
                say(app, &team, b, "/reset").await;
            }
            // Each round's scan takes its own bot's timer, so the
            // last_timeout round sees exactly one.
            let timed = tick(app, t0 + chrono::Duration::seconds(62)).await;
            if on == "last_timeout" {
                assert_eq!(timed, 1);
            }
            app.settle().await;
            let l = log(app, b);
            let mine = fired(&l, on);
            assert_eq!(mine.len(), 6, "{on}: each action once: {l:?}");
            assert!(
                mine.iter().all(|f| f["status"] == "succeeded"),
                "{on}: {l:?}"
            );
            let mut done: Vec<&str> = mine.iter().map(|f| f["action"].as_str().unwrap()).collect();
            done.sort_unstable();
            assert_eq!(
                done,
                [
                    "end_conversation",
                    "log",
                    "prompt_bot",
                    "schedule_message",
                    "start_pipeline",
                    "update_participant_data"
                ],
                "{on}"
            );
            // What each action did is there, once.
            let row = domain::chatbots::find_row(&app.domain, team.id, b)
                .await
                .unwrap()
                .row_id;
            let family = format!("({})", row.0);
            assert_eq!(
                app.scalar(&format!(
                    "SELECT COUNT(*) FROM messages m JOIN sessions s ON s.id = m.session_id \
                     WHERE s.chatbot_id IN {family} AND m.role = 'ai' AND m.content LIKE '%Say {on}%'"
                ))
                .await,
                1,
                "{on}: prompt_bot's message"
            );
            assert_eq!(
                app.scalar(&format!(
                    "SELECT COUNT(*) FROM schedules WHERE name = '{on}'"
                ))
                .await,
                1,
                "{on}: the scheduled message"
            );
            assert_eq!(
                app.scalar(&format!(
                    "SELECT COUNT(*) FROM participant_data WHERE chatbot_id IN {family} AND CAST(data AS TEXT) LIKE '%{on}%'"
                ))
                .await,
                1,
                "{on}: the participant data"
            );
            // A session the participant ended stays ended by them.
            let (by, ended) = match on {
                "conversation_end" => ("user", "the session had already ended"),
                _ => ("event", "ended the session"),
            };
            assert_eq!(
                app.scalar(&format!(
                    "SELECT COUNT(*) FROM sessions WHERE chatbot_id IN {family} AND ended_by = '{by}'"
                ))
                .await,
                1,
                "{on}: the session the event ended"
            );
            let end = mine
                .iter()
                .find(|f| f["action"] == "end_conversation")
                .unwrap();
            assert_eq!(end["done"], ended, "{on}");
        }
    }
);

both_backends!(
    a_failing_firing_is_recorded_with_its_error,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let failing = json!({
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "t", "type": "template", "params": {"template_string": "{{ nowhere.value }}"}},
                {"id": "end", "type": "end"}
            ],
            "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}]
        });
        let b = bot(
            app,
            &team,
            template_pipeline(),
            json!([{"on": "new_human_message", "action": {"type": "start_pipeline", "pipeline": failing}}]),
        )
        .await;
        let (s, v) = say(app, &team, b, "hi").await;
        assert_eq!((s, v["response"].as_str()), (200, Some("got hi")), "{v}");
        app.settle().await;
        let l = log(app, b);
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(l[0]["status"], "failed", "{l:?}");
        assert_eq!(
            l[0]["attempts"], 1,
            "a pipeline error is not retried: {l:?}"
        );
        assert!(
            l[0]["last_error"].as_str().unwrap().contains("nowhere"),
            "{l:?}"
        );
        // The text log shows it too, and the failed run's trace is kept.
        let cli = Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app);
        let out = cli.ok(&["events", "log", "--chatbot", &b.to_string()]);
        assert!(out.contains("failed") && out.contains("nowhere"), "{out}");
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM traces WHERE status = 'error'")
                .await,
            1
        );
    }
);

both_backends!(
    end_conversation_and_prompt_bot_actions,
    async |app: &TestApp| {
        let team = app.team("a").await;
        app.provider(&team, "local", "builtin", None, None).await;
        let llm = json!({
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "l", "type": "llm", "params": {"provider": "local", "model": "echo", "prompt": "You help."}},
                {"id": "end", "type": "end"}
            ],
            "edges": [{"from": "start", "to": "l"}, {"from": "l", "to": "end"}]
        });
        // The bot greets every new session on its own; its greeting raises no
        // new_bot_message (that one fires for replies only).
        let b = bot(
            app,
            &team,
            llm,
            json!([
                {"on": "conversation_start", "action": {"type": "prompt_bot", "instruction": "Greet the participant"}},
                {"on": "new_bot_message", "action": {"type": "log"}},
                {"on": "new_human_message", "action": {"type": "end_conversation"}},
                {"on": "conversation_end", "action": {"type": "log", "message": "ended"}}
            ]),
        )
        .await;
        let (s, v) = say(app, &team, b, "hello").await;
        assert_eq!(s, 200, "{v}");
        app.settle().await;
        let ai = app
            .rows(
                "SELECT content FROM messages WHERE role = 'ai' ORDER BY id",
                &["content"],
            )
            .await;
        assert_eq!(ai.len(), 2, "the reply and the greeting: {ai:?}");
        let sessions = app
            .rows(
                "SELECT status, ended_by FROM sessions",
                &["status", "ended_by"],
            )
            .await;
        assert_eq!(
            sessions,
            [json!({"status": "pending-review", "ended_by": "event"})]
        );
        let l = log(app, b);
        assert_eq!(fired(&l, "new_bot_message").len(), 1, "{l:?}");
        assert_eq!(
            fired(&l, "new_human_message")[0]["done"],
            "ended the session"
        );
        assert_eq!(fired(&l, "conversation_end")[0]["done"], "logged: ended");
        assert_eq!(
            fired(&l, "conversation_start")[0]["done"],
            "asked the bot to message the participant"
        );
    }
);

both_backends!(
    triggers_are_checked_when_saved_and_versioned,
    async |app: &TestApp| {
        let cli = Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app);
        cli.ok(&["team", "create", "acme"]);
        let write = |events: &str| {
            apply(
                app,
                &cli,
                &format!("name: Ev\nconfig:\n  events:\n{events}"),
            )
        };
        let (ok, _, err) = write("    - {on: new_message, action: {type: log}}\n");
        assert!(!ok);
        assert!(
            err.contains("events[0]: on: unknown event \"new_message\""),
            "{err}"
        );
        let (ok, _, err) = write(
            "    - {on: new_human_message, action: {type: log}}\n    - {on: conversation_end, action: {type: prompt_bot}}\n",
        );
        assert!(!ok);
        assert!(err.contains("events[1]"), "{err}");
        let (ok, _, err) = write("    - {timeout: {seconds: 0}, action: {type: log}}\n");
        assert!(!ok);
        assert!(err.contains("timeout.seconds: must be at least 1"), "{err}");
        let (ok, out, err) = write("    - {on: \"conversation_end:api\", action: {type: log}}\n");
        assert!(ok, "{err}");
        assert!(out.contains("created chatbot Ev"), "{out}");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM chatbots").await, 1);
    }
);

both_backends!(
    onboarding_settings_are_checked_when_saved,
    async |app: &TestApp| {
        let cli = Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app);
        cli.ok(&["team", "create", "acme"]);
        let write = |config: &str| apply(app, &cli, &format!("name: Study\nconfig:\n{config}"));
        for (config, says) in [
            (
                "  seed_message: {text: Hi, prompt: Greet}\n",
                "seed_message: give text or prompt, not both",
            ),
            (
                "  consent: {txt: Agree?}\n",
                "consent: txt: unknown field `txt`",
            ),
            (
                "  allowlist: {identifiers: [\"+1555\", \" \"]}\n",
                "allowlist.identifiers[1]: must not be blank",
            ),
            ("  welcome: {text: Hi}\n", "unknown setting \"welcome\""),
        ] {
            let (ok, _, err) = write(config);
            assert!(!ok, "{config}");
            assert!(err.contains(says), "{config} → {err}");
        }
        assert_eq!(app.scalar("SELECT COUNT(*) FROM chatbots").await, 0);
        let (ok, out, err) = write(
            "  seed_message: {text: \"Hello! I am your study helper.\"}\n  consent: {text: \"Do you agree to take part? Reply YES to continue.\"}\n  allowlist: {identifiers: [\"+15550001\"], message: \"This study is closed.\"}\n",
        );
        assert!(ok, "{err}");
        assert!(out.contains("created chatbot Study"), "{out}");
    }
);

/// `chatbot apply` of a chatbot file for team `acme`: (ok, stdout, stderr).
fn apply(app: &TestApp, cli: &Binary, yaml: &str) -> (bool, String, String) {
    let file = app.data_dir.path().join("bot.yaml");
    std::fs::write(&file, yaml).unwrap();
    cli.run(&[
        "chatbot",
        "apply",
        "--team",
        "acme",
        "--file",
        file.to_str().unwrap(),
    ])
}

async fn tick(app: &TestApp, at: chrono::DateTime<chrono::Utc>) -> usize {
    domain::timeouts::tick(&app.domain, at).await.unwrap()
}

async fn timers(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM timeout_timers").await
}

both_backends!(
    timeouts_fire_after_silence_repeat_and_stop_when_answered,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let b = bot(
            app,
            &team,
            template_pipeline(),
            json!([
                {"timeout": {"seconds": 60, "times": 2}, "action": {"type": "log", "message": "nudge"}},
                {"on": "last_timeout", "action": {"type": "update_participant_data", "data": {"gave_up": true}}}
            ]),
        )
        .await;
        // Only the published version's timeouts arm.
        say(app, &team, b, "draft").await;
        assert_eq!(timers(app).await, 0);
        app.publish(&team, b, "v1", true).await;
        let t0 = chrono::Utc::now();
        say(app, &team, b, "hello").await;
        assert_eq!(timers(app).await, 1);
        let s = |n: i64| t0 + chrono::Duration::seconds(n);
        assert_eq!(tick(app, s(30)).await, 0, "not due yet");
        // Two processes scanning at once: one of them fires it.
        let (a, b2) = tokio::join!(tick(app, s(62)), tick(app, s(62)));
        assert_eq!(a + b2, 1);
        assert_eq!(tick(app, s(62)).await, 0, "fired once per due time");
        assert_eq!(tick(app, s(123)).await, 1, "the second and last time");
        assert_eq!(timers(app).await, 0);
        assert_eq!(tick(app, s(10_000)).await, 0);
        app.settle().await;
        let l = log(app, b);
        assert_eq!(fired(&l, "timeout:60s").len(), 2, "{l:?}");
        assert_eq!(fired(&l, "timeout:60s")[0]["done"], "logged: nudge");
        assert_eq!(fired(&l, "last_timeout").len(), 1, "{l:?}");
        assert_eq!(participant_data(app, &team).await, json!({"gave_up": true}));
        // An answer re-arms the timer; the earlier message's timer never fires.
        let t1 = chrono::Utc::now();
        say(app, &team, b, "back").await;
        say(app, &team, b, "again").await;
        assert_eq!(timers(app).await, 1);
        assert_eq!(tick(app, t1 + chrono::Duration::seconds(62)).await, 1);
        app.settle().await;
        assert_eq!(fired(&log(app, b), "timeout:60s").len(), 3);
    }
);

both_backends!(
    editing_a_timeout_is_not_retroactive,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let b = bot(
            app,
            &team,
            template_pipeline(),
            json!([{"timeout": {"seconds": 60}, "action": {"type": "log"}}]),
        )
        .await;
        app.publish(&team, b, "v1", true).await;
        let t0 = chrono::Utc::now();
        say(app, &team, b, "hello").await;
        // A new version with a shorter timeout, published: the armed timer keeps 60 s.
        domain::chatbots::update_working(
            &app.domain.db.write,
            team.id,
            b,
            "Bot",
            None,
            Some(json!({"pipeline": template_pipeline(), "events": [{"timeout": {"seconds": 5}, "action": {"type": "log"}}]})),
        )
        .await
        .unwrap();
        app.publish(&team, b, "v2", true).await;
        assert_eq!(tick(app, t0 + chrono::Duration::seconds(30)).await, 0);
        assert_eq!(tick(app, t0 + chrono::Duration::seconds(62)).await, 1);
    }
);

both_backends!(
    start_pipeline_runs_on_the_conversation_without_speaking,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let summariser = app
            .chatbot_with(
                &team,
                "Summary",
                json!({"pipeline": {
                    "nodes": [
                        {"id": "start", "type": "start"},
                        {"id": "s", "type": "template", "params": {"template_string": "last: {{ input }}"}},
                        {"id": "end", "type": "end"}
                    ],
                    "edges": [{"from": "start", "to": "s"}, {"from": "s", "to": "end"}]
                }}),
            )
            .await;
        let inline = json!({
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "sum", "type": "template", "params": {"template_string": "summary: {{ input }}"}},
                {"id": "end", "type": "end"}
            ],
            "edges": [{"from": "start", "to": "sum"}, {"from": "sum", "to": "end"}]
        });
        let b = bot(
            app,
            &team,
            template_pipeline(),
            json!([
                {"on": "conversation_end", "action": {"type": "start_pipeline", "pipeline": inline, "input": "full_history"}},
                {"on": "new_bot_message", "action": {"type": "start_pipeline", "chatbot": summariser}}
            ]),
        )
        .await;
        say(app, &team, b, "one").await;
        let sid = app.only_session().await;
        say(app, &team, b, "/reset").await;
        app.settle().await;
        let ai = app
            .scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
            .await;
        assert_eq!(ai, 1, "the pipelines said nothing in the conversation");
        let traces = app
            .get_json(&format!("/api/sessions/{sid}/traces/"), &team.key)
            .await;
        let outputs: Vec<String> = traces["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["output_message"].is_null())
            .map(|t| {
                t["nodes"][1]["output"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        assert!(
            outputs.contains(&"summary: user: one\nassistant: got one".to_string()),
            "{outputs:?}"
        );
        assert!(
            outputs.contains(&"last: got one".to_string()),
            "{outputs:?}"
        );
        let l = log(app, b);
        assert!(
            l.iter()
                .all(|f| f["status"] == "succeeded" && f["action"] == "start_pipeline"),
            "{l:?}"
        );
    }
);

both_backends!(
    start_pipeline_names_a_chatbot_of_the_same_team,
    async |app: &TestApp| {
        let mine = app.team("a").await;
        let theirs = app.team("b").await;
        let other = app.chatbot_with(&theirs, "Theirs", json!({})).await;
        let config = |id: Uuid| json!({"events": [{"on": "conversation_end", "action": {"type": "start_pipeline", "chatbot": id}}]});
        let err = domain::chatbots::create(
            &app.domain.db.write,
            mine.id,
            Some(mine.owner_id),
            "Mine",
            None,
            Some(config(other)),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("events[0]: action.chatbot: no chatbot") && err.contains("in this team"),
            "{err}"
        );
        let own = app.chatbot_with(&mine, "Own", json!({})).await;
        app.chatbot_with(&mine, "Mine", config(own)).await;
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM chatbots WHERE team_id = {}",
                mine.id
            ))
            .await,
            2
        );
    }
);
