#![expect(clippy::unwrap_used, reason = "tests and their harness fail loudly")]
//! Crash test: under a steady load of widget messages and channel turns the
//! server is killed with SIGKILL and restarted on the same database. Every
//! request that got a 2xx is present, every accepted task finishes, no reply is
//! duplicated, and the database is intact.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{Backend, TestApp, both_backends};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cmd(app: &TestApp) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chatstudio"));
    c.arg("--data-dir")
        .arg(app.data_dir.path())
        .env_remove("DATABASE_URL")
        .env("CHATSTUDIO_LOG", "warn");
    if let Some(url) = &app.db_url {
        c.arg("--database-url").arg(url);
    }
    c
}

/// Starts `chatstudio serve` and returns it with the stdout lines it printed up to "listening".
fn serve(app: &TestApp, port: u16) -> (Server, Vec<String>) {
    let mut child = cmd(app)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        let done = line.contains("listening on");
        lines.push(line);
        if done {
            break;
        }
    }
    (Server(child), lines)
}

both_backends!(kill_nine_under_load_loses_nothing, async |app: &TestApp| {
    // The harness app only provides the database (no workers of its own); the
    // server under test is a child process.
    let _ = app;
    let app = &TestApp::start_with(
        app.backend,
        testkit::Options {
            workers: 0,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (server, banner) = serve(app, port);
    let key = banner
        .iter()
        .skip_while(|l| !l.contains("API key"))
        .nth(2)
        .unwrap()
        .trim()
        .to_string();
    let bot = banner
        .iter()
        .find(|l| l.contains("demo chatbot ("))
        .unwrap();
    let bot = bot
        .split("demo chatbot (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    let out = cmd(app)
        .args([
            "channel",
            "add-widget",
            "--chatbot",
            &bot,
            "--domain",
            "example.com",
            "--auth-level",
            "embed-key",
        ])
        .output()
        .unwrap();
    let embed = String::from_utf8_lossy(&out.stdout)
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started: Value = client
        .post(format!("{base}/api/chat/start/"))
        .header("X-Embed-Key", &embed)
        .header("Origin", "https://example.com")
        .json(&json!({"chatbot_id": bot}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = started["session_id"].as_str().unwrap().to_string();

    // Load: channel turns (a 200 means a reply was stored) and widget messages (a 202 means a task was accepted).
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut load = Vec::new();
    for w in 0..8 {
        let (client, base, key, bot, embed, sid) = (
            client.clone(),
            base.clone(),
            key.clone(),
            bot.clone(),
            embed.clone(),
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
                    let r = client
                        .post(format!("{base}/api/chat/{sid}/message/"))
                        .header("X-Embed-Key", &embed)
                        .header("Origin", "https://example.com")
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
    drop(server); // SIGKILL mid-load
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
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (_server, _) = serve(app, port);
    let mut unfinished = tasks.clone();
    // Jobs running at the crash come back once their lease (15 s) lapses.
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let mut still = Vec::new();
        for t in &unfinished {
            let r = client
                .get(format!("{base}/api/chat/{sid}/{t}/poll/"))
                .header("X-Embed-Key", &embed)
                .header("Origin", "https://example.com")
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap_or(Value::Null);
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
    if app.backend == Backend::Sqlite {
        let ok = app.rows("PRAGMA integrity_check", &["r"]).await;
        assert_eq!(ok[0]["r"], "ok");
    } else {
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages m LEFT JOIN sessions s ON s.id = m.session_id WHERE s.id IS NULL").await, 0);
    }
});
