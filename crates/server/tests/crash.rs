//! Crash test: under a steady load of widget messages and channel turns the
//! server is killed with SIGKILL and restarted on the same database. Every
//! request that got a 2xx is present, every accepted task finishes, no reply is
//! duplicated, every event trigger fires exactly once per reply (its
//! `prompt_bot` message written once), and the database is intact.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::process::Binary;
use testkit::widget::WidgetClient;
use testkit::{Backend, Options, TestApp, both_backends};

both_backends!(
    kill_nine_under_load_loses_nothing,
    // The harness app only provides the database (no workers of its own); the
    // server under test is a child process.
    Options::no_workers(),
    async |app: &TestApp| {
        let bin = Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app);
        let mut server = bin.serve(&[]).await;
        let base = server.base();
        let key = server.api_key().unwrap();
        let bot = server.demo_chatbot().unwrap();
        let out = bin.ok(&[
            "channel",
            "add-widget",
            "--chatbot",
            &bot,
            "--domain",
            "example.com",
            "--auth-level",
            "embed-key",
        ]);
        let embed = out.trim_end().lines().last().unwrap().to_string();
        // Each reply fires a trigger whose action writes another message.
        let id = uuid::Uuid::parse_str(&bot).unwrap();
        let (team, demo) = domain::chatbots::find_any_team(&app.domain, id)
            .await
            .unwrap();
        let mut config = demo.config.clone();
        config["events"] = json!([{"on": "new_bot_message", "action": {"type": "prompt_bot", "instruction": "Ask if that helped."}}]);
        domain::chatbots::update_working(&app.domain, team, id, &demo.name, None, Some(config))
            .await
            .unwrap();
        // The demo chatbot is published: its triggers live in the version that runs.
        domain::chatbots::create_version(&app.domain.db.write, team, id, "triggers", true)
            .await
            .unwrap();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let widget = WidgetClient::new(client.clone(), &base, &embed, "https://example.com");
        let sid = widget.start(&bot).await;

        // Load: channel turns (a 200 means a reply was stored) and widget messages (a 202 means a task was accepted).
        let deadline = Instant::now() + Duration::from_millis(1500);
        let mut load = Vec::new();
        for w in 0..8 {
            let (client, widget, base, key, bot, sid) = (
                client.clone(),
                widget.clone(),
                base.clone(),
                key.clone(),
                bot.clone(),
                sid.clone(),
            );
            load.push(tokio::spawn(async move {
                let (mut replied, mut tasks) = (Vec::new(), Vec::new());
                let mut i = 0;
                while Instant::now() < deadline + Duration::from_secs(3) {
                    i += 1;
                    let text = format!("w{w}-m{i}");
                    if w % 2 == 0 {
                        let r = client
                            .post(format!("{base}/channels/api/{bot}/incoming_message"))
                            .header("X-Api-Key", &key)
                            .json(&json!({"message": text}))
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 200 => replied.push(text),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    } else {
                        let r = widget
                            .request(reqwest::Method::POST, &format!("/api/chat/{sid}/message/"))
                            .json(&json!({"message": text}))
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 202 => {
                                let v: Value = r.json().await.unwrap_or(Value::Null);
                                if let Some(t) = v["task_id"].as_str() {
                                    tasks.push(t.to_string());
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
                (replied, tasks)
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill(); // SIGKILL mid-load
        let mut replied = Vec::new();
        let mut tasks = Vec::new();
        for l in load {
            let (r, t) = l.await.unwrap();
            replied.extend(r);
            tasks.extend(t);
        }
        assert!(
            !replied.is_empty() && !tasks.is_empty(),
            "the load ran before the crash"
        );

        // Restart on the same database; the accepted work completes.
        let server = server.restart().await;
        let widget = WidgetClient::new(client, &server.base(), &embed, "https://example.com");
        let mut unfinished = tasks.clone();
        // Jobs running at the crash come back once their lease (15 s) lapses.
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            let mut still = Vec::new();
            for t in &unfinished {
                let (_, v) = widget.poll(&sid, t).await;
                if v["status"] == "processing" {
                    still.push(t.clone());
                }
            }
            unfinished = still;
            if unfinished.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            unfinished.is_empty(),
            "tasks still processing after restart: {}",
            unfinished.len()
        );

        // Every acknowledged message is stored; no input got two replies.
        let humans: HashSet<String> = app
            .rows("SELECT content FROM messages WHERE role = 'human'", &["c"])
            .await
            .into_iter()
            .map(|r| r["c"].as_str().unwrap().to_string())
            .collect();
        for text in &replied {
            assert!(
                humans.contains(text),
                "acknowledged message {text} is missing"
            );
        }
        let replies = app
        .scalar("SELECT COUNT(*) FROM (SELECT input_message_id FROM traces WHERE status = 'success' AND input_message_id IS NOT NULL GROUP BY input_message_id HAVING COUNT(*) > 1) d")
        .await;
        assert_eq!(replies, 0, "no input answered twice");
        let ai_for_replied = app
        .scalar(
            "SELECT COUNT(*) FROM messages m WHERE m.role = 'ai' AND m.content LIKE 'You said: w%'",
        )
        .await;
        assert!(ai_for_replied >= replied.len() as i64);
        // The triggers: once per reply, each firing's message written once.
        app.wait_until_within(
            "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')",
            0,
            Duration::from_secs(60),
        )
        .await;
        let turns = app
            .scalar("SELECT COUNT(*) FROM traces WHERE status = 'success' AND input_message_id IS NOT NULL AND output_message_id IS NOT NULL")
            .await;
        assert!(turns > 0);
        for (what, sql) in [
            (
                "firings",
                "SELECT COUNT(*) FROM jobs WHERE kind = 'event.fire' AND status = 'succeeded'",
            ),
            (
                "messages asked for",
                "SELECT COUNT(*) FROM jobs WHERE kind = 'bot.send' AND status = 'succeeded'",
            ),
            (
                "messages written",
                "SELECT COUNT(*) FROM messages WHERE role = 'ai' AND content LIKE '%Ask if that helped.%'",
            ),
        ] {
            assert_eq!(app.scalar(sql).await, turns, "{what} per reply");
        }
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE status <> 'succeeded'")
                .await,
            0
        );
        if app.backend == Backend::Sqlite {
            let ok = app.rows("PRAGMA integrity_check", &["r"]).await;
            assert_eq!(ok[0]["r"], "ok");
        } else {
            assert_eq!(app.scalar("SELECT COUNT(*) FROM messages m LEFT JOIN sessions s ON s.id = m.session_id WHERE s.id IS NULL").await, 0);
        }
    }
);
