#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
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
                    domain::jobs::NewJob::new("ping", serde_json::json!({})),
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
