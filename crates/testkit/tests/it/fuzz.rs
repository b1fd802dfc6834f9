//! Fuzzing the API with schemathesis against our own OpenAPI document: no
//! server errors and no responses that violate the document. Runs where
//! `CHATSTUDIO_SCHEMATHESIS` names the binary (`.ci/run` installs it into a
//! virtualenv); required in CI.

use std::process::Command;

use chatstudio_testkit::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_on_sqlite() {
    schemathesis(Backend::Sqlite).await;
}

/// PostgreSQL refuses input SQLite takes (NUL characters): fuzz it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_on_postgres() {
    schemathesis(Backend::Postgres).await;
}

async fn schemathesis(backend: Backend) {
    let bin = match std::env::var("CHATSTUDIO_SCHEMATHESIS") {
        Ok(b) if !b.is_empty() => b,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CHATSTUDIO_SCHEMATHESIS must point at schemathesis in CI");
            }
            eprintln!("skipping: CHATSTUDIO_SCHEMATHESIS is not set");
            return;
        }
    };
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let team = app.team("fuzz").await;
    let bot = app.echo_bot(&team).await;
    app.api_session(&team.key, bot, "p").await;
    let (url, key) = (app.url("/api/schema/"), team.key.clone());
    // schemathesis keeps a cache in its working directory: not in the checkout.
    let cwd = app.data_dir.path().to_path_buf();
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd)
        .args(["run", &url, "-H", &format!("X-Api-Key: {key}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args([
            "--max-examples",
            "15",
            "--phases",
            "coverage,fuzzing",
            "--seed",
            "1",
        ]);
    let out = chatstudio_testkit::process::output(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.finish().await;
}
