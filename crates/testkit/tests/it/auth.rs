use chatstudio_testkit::{TestApp, both_backends};
use reqwest::Method;
use sea_orm::{ConnectionTrait, ExprTrait, sea_query::Expr, sea_query::Query};

const PATH: &str = "/api/experiments/";

async fn expect_401(app: &TestApp, rb: reqwest::RequestBuilder, detail: &str) {
    let _ = app;
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers().get("www-authenticate").unwrap(),
        "Bearer realm=\"api\""
    );
    assert_eq!(r.headers().get("content-type").unwrap(), "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"detail": detail}));
}

both_backends!(rejects_missing_and_bad_keys, async |app: &TestApp| {
    let team = app.team("a").await;
    let get = || app.request(Method::GET, PATH, None);
    expect_401(app, get(), "Authentication credentials were not provided.").await;
    expect_401(app, get().header("X-Api-Key", "garbage"), "Invalid token.").await;
    expect_401(
        app,
        get().header("X-Api-Key", "nope1234.abcdefabcdefabcdefabcdefabcdefabcdef"),
        "Invalid token.",
    )
    .await;
    let (prefix, _) = team.key.split_once('.').unwrap();
    let wrong = format!("{prefix}.{}", "x".repeat(40));
    expect_401(
        app,
        get().header("X-Api-Key", wrong.as_str()),
        "Invalid token.",
    )
    .await;
    expect_401(
        app,
        get().header("Authorization", "Bearer"),
        "Invalid token.",
    )
    .await;
    // A known prefix followed by nothing is not a key.
    expect_401(
        app,
        get().header("X-Api-Key", format!("{prefix}.")),
        "Invalid token.",
    )
    .await;

    // Good keys, both headers, keyword case-insensitive.
    assert_eq!(
        get()
            .header("X-Api-Key", &team.key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get()
            .header("x-api-key", &team.key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get()
            .header("Authorization", format!("Bearer {}", team.key))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get()
            .header("Authorization", format!("bearer {}", team.key))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Revoked keys stop working at once.
    domain::keys::revoke(&app.domain.db.write, prefix)
        .await
        .unwrap();
    expect_401(app, get().header("X-Api-Key", &team.key), "Invalid token.").await;
});

both_backends!(inactive_user_and_lost_membership, async |app: &TestApp| {
    let team = app.team("a").await;
    let db = &app.domain.db.write;
    db.execute(
        &Query::delete()
            .from_table("memberships")
            .and_where(Expr::col("user_id").eq(team.owner_id))
            .to_owned(),
    )
    .await
    .unwrap();
    expect_401(
        app,
        app.request(Method::GET, PATH, Some(&team.key)),
        "Incorrect authentication credentials.",
    )
    .await;
    db.execute(
        &Query::update()
            .table("users")
            .value("is_active", false)
            .and_where(Expr::col("id").eq(team.owner_id))
            .to_owned(),
    )
    .await
    .unwrap();
    expect_401(
        app,
        app.request(Method::GET, PATH, Some(&team.key)),
        "User inactive or deleted.",
    )
    .await;
});

both_backends!(read_only_keys_cannot_write, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.chatbot(&team, "Bot").await;
    let r = app.get(PATH, &team.read_only_key).await;
    assert_eq!(r.status(), 200);
    let r = app
        .get(&format!("/api/experiments/{bot}/"), &team.read_only_key)
        .await;
    assert_eq!(r.status(), 200);
    for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let r = app
            .request(m.clone(), PATH, Some(&team.read_only_key))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{m}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body["detail"],
            "You do not have permission to perform this action."
        );
        // The same method with a read-write key reaches the router: not offered here.
        let r = app
            .request(m.clone(), PATH, Some(&team.key))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{m}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["detail"], format!("Method \"{m}\" not allowed."));
    }
    // Unauthenticated writes are 401, not 405.
    let r = app.request(Method::PUT, PATH, None).send().await.unwrap();
    assert_eq!(r.status(), 401);
});
