#![expect(clippy::unwrap_used, reason = "tests fail loudly")]
//! Turns read their chatbot, version, pipeline and provider from a cache
//! kept per process (`domain::catalog`): a change made anywhere — the CLI
//! here, a separate process like another server would be — is seen by the
//! very next turn of every server process on the database.

use serde_json::{Value, json};
use testkit::process::Binary;
use testkit::{TestApp, both_backends};

fn last_line(s: &str) -> String {
    s.trim_end().lines().last().unwrap_or("").to_string()
}

/// A chatbot file whose one LLM node runs built-in `model` with `prompt`.
fn bot_file(model: &str, prompt: &str) -> String {
    format!(
        "name: Cached\nconfig:\n  pipeline:\n    nodes:\n      - {{id: start, type: start}}\n      - {{id: llm, type: llm, params: {{provider: local, model: {model}, prompt: '{prompt}'}}}}\n      - {{id: end, type: end}}\n    edges:\n      - {{from: start, to: llm}}\n      - {{from: llm, to: end}}\n"
    )
}

async fn talk(base: &str, key: &str, bot: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/channels/api/{bot}/incoming_message"))
        .header("X-Api-Key", key)
        .json(&json!({"message": "hi"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json::<Value>().await.unwrap())
}

both_backends!(
    a_change_is_seen_by_the_next_turn_of_every_process,
    async |app: &TestApp| {
        let cli = Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app);
        cli.ok(&["team", "create", "acme"]);
        let key = last_line(&cli.ok(&["key", "create", "--team", "acme", "--read-write"]));
        cli.ok(&[
            "provider", "add", "--team", "acme", "--name", "local", "--type", "builtin",
        ]);
        let bot = last_line(&cli.apply_ok("acme", "bot.yaml", &bot_file("echo", "First")));
        // A second server process on the same database.
        let other = cli.serve(&[]).await;
        let servers = [app.base.clone(), other.base()];
        let replies = async || {
            let mut out = Vec::new();
            for base in &servers {
                out.push(talk(base, &key, &bot).await);
            }
            out
        };
        // Twice, so the second turn of each process is served from its cache.
        for _ in 0..2 {
            for (status, body) in replies().await {
                assert_eq!(
                    (status, body["response"].as_str()),
                    (200, Some("You said: hi"))
                );
            }
        }

        // The pipeline changes (model and prompt): the next turn runs the new one.
        cli.apply_ok("acme", "bot.yaml", &bot_file("echo-system", "Second"));
        for (status, body) in replies().await {
            assert_eq!(
                (status, body["response"].as_str()),
                (200, Some("Second")),
                "{body}"
            );
        }

        // The provider goes: the next turn cannot use the one it cached.
        cli.ok(&["provider", "remove", "--team", "acme", "--name", "local"]);
        for (status, body) in replies().await {
            assert_ne!(status, 200, "{body}");
        }
        cli.ok(&[
            "provider", "add", "--team", "acme", "--name", "local", "--type", "builtin",
        ]);
        for (status, body) in replies().await {
            assert_eq!(
                (status, body["response"].as_str()),
                (200, Some("Second")),
                "{body}"
            );
        }

        // Archived (through the domain, as the API and console do): gone for the next turn.
        let team = domain::teams::by_slug(&app.domain, "acme").await.unwrap();
        domain::chatbots::archive(&app.domain, team.id, bot.parse().unwrap())
            .await
            .unwrap();
        for (status, body) in replies().await {
            assert_eq!(status, 404, "{body}");
        }
    }
);
