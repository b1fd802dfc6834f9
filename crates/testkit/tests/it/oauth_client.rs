//! The whole code flow driven by a real OAuth client library (Python's
//! `authlib`): consent page, PKCE, token, API call, refresh, revocation.
//! Skipped where authlib is not installed, except in CI (`.ci/run`
//! installs it).

use std::process::Command;

use chatstudio_testkit::console::PASSWORD;
use chatstudio_testkit::{TestApp, both_backends};
use domain::oauth::{AppKind, NewApp};
use domain::teams::Role;
use serde_json::{Value, json};

both_backends!(authlib_runs_the_code_flow, async |app: &TestApp| {
    if !chatstudio_testkit::process::python_has("authlib, requests") {
        return;
    }
    let team = app.team("a").await;
    app.echo_bot(&team).await;
    app.member(&team, "dana@example.org", Role::ChatbotAdmin)
        .await;
    let redirect = "http://127.0.0.1:9/callback";
    let (client, secret) = domain::oauth::apps::create(
        &app.domain,
        team.id,
        None,
        NewApp {
            name: "Dashboard".into(),
            kind: AppKind::User,
            public: false,
            redirect_uris: vec![redirect.into()],
            chatbots: vec![],
            pkce_required: true,
        },
    )
    .await
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/oauth_client.py");
    let mut cmd = Command::new("python3");
    cmd.args([
        script,
        &app.base,
        &client.client_id,
        &secret.unwrap(),
        redirect,
        "dana@example.org",
        PASSWORD,
    ]);
    let out = chatstudio_testkit::process::output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        seen,
        json!({
            "sign_in": 303,
            "consent": 200,
            "redirected_to_client": true,
            "token_type": "Bearer",
            "scope": "chatbots:read sessions:read",
            "has_refresh": true,
            "experiments": 200,
            "experiment_count": 1,
            "rotated": true,
            "after_refresh": 200,
            "revoke": 200,
            "after_revoke": 401,
            "wrong_verifier": "invalid_grant",
        })
    );
});
