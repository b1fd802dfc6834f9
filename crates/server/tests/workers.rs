//! Two `chatstudio worker` processes on one database run every job exactly once.

use std::time::Duration;

use testkit::process::Binary;
use testkit::{Backend, Options, TestApp, both_backends};

fn workers(app: &TestApp) -> Binary {
    Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app)
}

both_backends!(
    two_processes_run_each_job_exactly_once,
    // The in-process app runs no jobs: the `worker` processes do.
    Options::no_workers(),
    async |app: &TestApp| {
        let bin = workers(app);
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
        let (a, b) = (
            bin.spawn(&["worker", "--workers", "2"]),
            bin.spawn(&["worker", "--workers", "2"]),
        );
        let done = app
            .wait_until_within(
                "SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'",
                n,
                Duration::from_secs(120),
            )
            .await;
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
    }
);

both_backends!(
    two_processes_never_deliver_a_schedule_twice,
    // The in-process app runs no jobs: the `worker` processes do.
    Options::no_workers(),
    async |app: &TestApp| {
        let bin = workers(app);
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
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
        let (a, b) = (
            bin.spawn(&["worker", "--workers", "2"]),
            bin.spawn(&["worker", "--workers", "2"]),
        );
        let done = app
            .wait_until(
                "SELECT COUNT(*) FROM schedules WHERE status = 'complete'",
                n,
            )
            .await;
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
    }
);

both_backends!(
    two_processes_fire_each_timeout_once_and_a_killed_one_loses_nothing,
    // The in-process app runs no jobs and no scans: the `worker` processes do.
    Options::no_workers(),
    async |app: &TestApp| {
        let bin = workers(app);
        let team = app.team("a").await;
        let bot = app
            .chatbot_with(
                &team,
                "Bot",
                serde_json::json!({
                    "pipeline": {
                        "nodes": [
                            {"id": "start", "type": "start"},
                            {"id": "t", "type": "template", "params": {"template_string": "got {{ input }}"}},
                            {"id": "end", "type": "end"}
                        ],
                        "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}]
                    },
                    "events": [
                        {"timeout": {"seconds": 1, "times": 4}, "action": {"type": "log"}},
                        {"on": "last_timeout", "action": {"type": "log", "message": "last"}}
                    ]
                }),
            )
            .await;
        app.publish(&team, bot, "v1", true).await;
        let (s, v) = app
            .post_json(
                &format!("/channels/api/{bot}/incoming_message"),
                &team.key,
                &serde_json::json!({"message": "hello"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let args = ["worker", "--workers", "2", "--timeout-scan-interval", "1"];
        let a = bin.spawn(&args);
        let b = bin.spawn(&args);
        let fires = "SELECT COUNT(*) FROM jobs WHERE kind = 'event.fire'";
        app.wait_until_within(fires, 1, Duration::from_secs(60))
            .await;
        // One process dies (SIGKILL) after the first firing; the other goes on.
        drop(a);
        let done = app
            .wait_until_within(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'event.fire' AND status = 'succeeded'",
                5,
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(done, 5, "four timeouts and the last_timeout");
        // Another scan or two: nothing fires again.
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(b);
        assert_eq!(app.scalar(fires).await, 5);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'event.fire' AND runs <> 1")
                .await,
            0
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM timeout_timers").await, 0);
    }
);
