use chatstudio_testkit::{TestApp, both_backends};
use serde_json::Value;

both_backends!(slash_rules_and_v1_alias, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.chatbot(&team, "Bot").await;
    let r = app.get("/api/experiments?page_size=2", &team.key).await;
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/api/experiments/?page_size=2");
    let r = app.get(&format!("/api/experiments/{bot}"), &team.key).await;
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], format!("/api/experiments/{bot}/"));
    let r = app.get("/api/v1/experiments", &team.key).await;
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/api/v1/experiments/");

    let plain = app
        .get("/api/experiments/", &team.key)
        .await
        .text()
        .await
        .unwrap();
    let v1 = app
        .get("/api/v1/experiments/", &team.key)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        plain, v1,
        "the alias answers the same JSON with unversioned URLs"
    );
    let one = app
        .get_json(&format!("/api/v1/experiments/{bot}/"), &team.key)
        .await;
    assert_eq!(one["url"], format!("{}/api/experiments/{bot}/", app.base));

    // Unknown routes: plain 404, not JSON.
    let r = app.get("/api/nothing/", &team.key).await;
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // X-Forwarded-Proto is honoured in absolute URLs.
    let r = app
        .request(
            reqwest::Method::GET,
            &format!("/api/experiments/{bot}/"),
            Some(&team.key),
        )
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body["url"].as_str().unwrap().starts_with("https://"));
});

both_backends!(health_and_docs_are_public, async |app: &TestApp| {
    let r = app.get_public("/healthz").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    let r = app.get_public("/api/schema/").await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["paths"]["/api/experiments/"]["get"].is_object());
    let r = app.get_public("/api/schema/?format=yaml").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("experiment_list"));
    let r = app.get_public("/api/schema.yaml").await;
    assert_eq!(r.status(), 200);
    let r = app.get_public("/api/docs/").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().to_lowercase().contains("swagger"));
});
