//! The official `openai` Python SDK works against the endpoint, plain and
//! streamed. Skipped where the SDK is not installed, except in CI, which
//! installs it (`.ci/run`).

use std::process::Command;

use chatstudio_testkit::{TestApp, both_backends};
use serde_json::Value;

both_backends!(the_official_python_sdk_works, async |app: &TestApp| {
    if !chatstudio_testkit::process::python_has("openai") {
        return;
    }
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/openai_sdk.py");
    let (base, key) = (app.base.clone(), team.key.clone());
    let mut cmd = Command::new("python3");
    cmd.args([script, &base, &key, &bot.to_string()]);
    let out = chatstudio_testkit::process::output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["plain"], "You said: I need help with something.");
    assert_eq!(seen["model"], "");
    assert_eq!(seen["streamed"], "You said: stream please");
    assert!(seen["stream_pieces"].as_u64().unwrap() > 1);
    assert!(seen["usage"].as_u64().unwrap() > 0);
    assert_eq!(seen["versioned"], "You said: versioned");
    let err = seen["error"].as_str().unwrap();
    assert!(
        err.starts_with("BadRequestError") && err.contains("Last message must be a user message"),
        "{err}"
    );
    let sid = seen["plain_id"].as_str().unwrap();
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE external_id = '{sid}'"
        ))
        .await,
        1
    );
});
