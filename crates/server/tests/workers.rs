#![expect(clippy::unwrap_used, reason = "tests and their harness fail loudly")]
//! Two `chatstudio worker` processes on one database run every job exactly once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::{Backend, Options, TestApp, both_backends};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(app: &TestApp) -> Killed {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatstudio"));
    cmd.arg("--data-dir").arg(app.data_dir.path());
    cmd.env_remove("DATABASE_URL").env("CHATSTUDIO_LOG", "warn");
    if let Some(url) = &app.db_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.args(["worker", "--workers", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Killed(cmd.spawn().unwrap())
}

both_backends!(
    two_processes_run_each_job_exactly_once,
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
        let n: i64 = if app.backend == Backend::Postgres {
            3000
        } else {
            1000
        };
        {
            use sea_orm::TransactionTrait;
            let txn = app.domain.db.write.begin().await.unwrap();
            for _ in 0..n {
                domain::jobs::enqueue(
                    &txn,
                    domain::jobs::NewJob::<domain::jobs::Ping>::new(serde_json::json!({})),
                )
                .await
                .unwrap();
            }
            txn.commit().await.unwrap();
        }
        let (a, b) = (worker(&app), worker(&app));
        let mut done = 0;
        for _ in 0..1200 {
            done = app
                .scalar("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'")
                .await;
            if done == n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop((a, b));
        assert_eq!(done, n, "every job finished");
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE runs <> 1 OR attempts <> 1")
                .await,
            0,
            "each exactly once"
        );
        let processes = app
            .rows("SELECT DISTINCT locked_by FROM jobs", &["w"])
            .await
            .iter()
            .map(|r| {
                r["w"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .nth(1)
                    .unwrap()
                    .to_string()
            })
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(
            processes.len(),
            2,
            "both processes took jobs: {processes:?}"
        );
        app.finish().await;
    }
);

both_backends!(
    two_processes_never_deliver_a_schedule_twice,
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
        let bot = app
            .llm_chatbot(&team, "local", "echo", "", serde_json::json!({}))
            .await;
        let family = app.scalar("SELECT id FROM chatbots").await;
        let n: i64 = if app.backend == Backend::Postgres {
            120
        } else {
            40
        };
        let due = chrono::Utc::now() - chrono::Duration::minutes(1);
        for i in 0..n {
            let (s, _) = app
                .post_json(
                    "/api/sessions/",
                    &team.key,
                    &serde_json::json!({"experiment": bot, "participant": format!("p{i}")}),
                )
                .await;
            assert_eq!(s, 201);
            let pid = app
                .scalar(&format!(
                    "SELECT id FROM participants WHERE identifier = 'p{i}'"
                ))
                .await;
            domain::schedules::create(
                &app.domain.db,
                domain::schedules::NewSchedule {
                    team_id: team.id,
                    chatbot_family_id: family,
                    participant_id: pid,
                    external_id: format!("s{i}"),
                    name: "reminder".into(),
                    prompt: "remind".into(),
                    first_at: due,
                    interval_seconds: None,
                    cron: None,
                    timezone: None,
                    repetitions: 1,
                    end_date: None,
                },
            )
            .await
            .unwrap();
        }
        let (a, b) = (worker(&app), worker(&app));
        let mut done = 0;
        for _ in 0..600 {
            done = app
                .scalar("SELECT COUNT(*) FROM schedules WHERE status = 'complete'")
                .await;
            if done == n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop((a, b));
        assert_eq!(done, n);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
                .await,
            n,
            "one message per schedule"
        );
        assert_eq!(
        app.scalar("SELECT COUNT(*) FROM (SELECT session_id FROM messages WHERE role = 'ai' GROUP BY session_id HAVING COUNT(*) > 1) d").await,
        0
    );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'schedule.fire'")
                .await,
            n,
            "one firing each"
        );
        app.finish().await;
    }
);
