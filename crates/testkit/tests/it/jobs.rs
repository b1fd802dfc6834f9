//! The job queue: a worker that dies mid-job, and idempotent chat turns.

use std::time::Duration;

use chatstudio_testkit::{Options, TestApp, both_backends};
use domain::jobs::{self, NewJob};
use serde_json::json;

async fn wait_until(app: &TestApp, sql: &str, want: i64) -> i64 {
    let mut got = 0;
    for _ in 0..300 {
        got = app.scalar(sql).await;
        if got == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    got
}

both_backends!(
    a_dead_workers_job_is_retried_once_its_lease_lapses,
    async |app: &TestApp| {
        let _ = app;
        let app = TestApp::start_with(
            app.backend,
            Options {
                workers: 0,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        for _ in 0..3 {
            jobs::enqueue(&app.domain.db.write, NewJob::<jobs::Ping>::new(json!({})))
                .await
                .unwrap();
        }
        // A worker claims one job with a short lease and then "crashes": it never
        // heartbeats or finishes.
        let claimed = jobs::claim(&app.domain.db, "doomed-worker", Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.attempts, 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let workers = engine::worker::spawn(
            app.engine.clone(),
            engine::worker::WorkerConfig {
                count: 2,
                poll_interval: Duration::from_millis(50),
                ..Default::default()
            },
            rx,
        );
        assert_eq!(
            wait_until(
                &app,
                "SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'",
                3
            )
            .await,
            3
        );
        let _ = stop.send(true);
        for w in workers {
            let _ = w.await;
        }
        assert_eq!(
            app.scalar(&format!(
                "SELECT attempts FROM jobs WHERE id = {}",
                claimed.id
            ))
            .await,
            2,
            "retried once"
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE runs <> 1")
                .await,
            0,
            "each ran to completion once"
        );
        // The crashed worker coming back cannot finish a job it no longer holds.
        assert!(
            !jobs::finish(
                &app.domain.db.write,
                claimed.id,
                "doomed-worker",
                jobs::Finished::Succeeded(json!({})),
            )
            .await
            .unwrap()
        );
        assert_eq!(
            app.scalar(&format!("SELECT runs FROM jobs WHERE id = {}", claimed.id))
                .await,
            1
        );
        app.finish().await;
    }
);

both_backends!(
    a_turn_written_before_a_crash_is_not_answered_twice,
    async |app: &TestApp| {
        let _ = app;
        let app = TestApp::start_with(
            app.backend,
            Options {
                workers: 0,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let team = app.team("a").await;
        app.provider(&team, "local", "builtin", None, None).await;
        let bot = app.llm_chatbot(&team, "local", "echo", "", json!({})).await;
        let (_, key) = app
            .widget(
                bot,
                &["*.example.com"],
                domain::channels::widget::AuthLevel::EmbedKey,
            )
            .await;
        let started: serde_json::Value = app
            .request(reqwest::Method::POST, "/api/chat/start/", None)
            .header("X-Embed-Key", &key)
            .header("Origin", "https://a.example.com")
            .json(&json!({"chatbot_id": bot}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sid = started["session_id"].as_str().unwrap().to_string();
        let accepted: serde_json::Value = app
            .request(
                reqwest::Method::POST,
                &format!("/api/chat/{sid}/message/"),
                None,
            )
            .header("X-Embed-Key", &key)
            .header("Origin", "https://a.example.com")
            .json(&json!({"message": "once"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // A worker claims the turn, writes the reply, and dies before marking the job done.
        let job = jobs::claim(&app.domain.db, "doomed", Duration::from_millis(200))
            .await
            .unwrap()
            .unwrap();
        let session = domain::sessions::get(&app.domain.db.read, job.session_id.unwrap())
            .await
            .unwrap()
            .unwrap();
        let chatbot = domain::chatbots::resolve(&app.domain.db.read, team.id, bot, Some(0))
            .await
            .unwrap();
        let mid = domain::MessageId(job.payload["message_id"].as_i64().unwrap());
        app.engine
            .run_turn(&session, &chatbot, mid, "once".into(), None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let workers = engine::worker::spawn(
            app.engine.clone(),
            engine::worker::WorkerConfig {
                count: 1,
                poll_interval: Duration::from_millis(50),
                ..Default::default()
            },
            rx,
        );
        assert_eq!(
            wait_until(
                &app,
                "SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'",
                1
            )
            .await,
            1
        );
        let _ = stop.send(true);
        for w in workers {
            let _ = w.await;
        }
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
                .await,
            1,
            "no duplicate reply"
        );
        let task = accepted["task_id"].as_str().unwrap();
        let polled: serde_json::Value = app
            .request(
                reqwest::Method::GET,
                &format!("/api/chat/{sid}/{task}/poll/"),
                None,
            )
            .header("X-Embed-Key", &key)
            .header("Origin", "https://a.example.com")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(polled["message"]["content"], "You said: once");
        app.finish().await;
    }
);
