//! `GET /api/files/{id}/content`.

use chatstudio_testkit::{TestApp, both_backends};
use serde_json::{Value, json};

both_backends!(download_and_404s, async |app: &TestApp| {
    let team = app.team("a").await;
    let other = app.team("b").await;
    let db = &app.domain.db.write;
    let f = app
        .stored_file(team.id, ("report.txt", ""), "assistant", b"hello file")
        .await;
    let r = app
        .get(&format!("/api/files/{}/content", f.id), &team.read_only_key)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"report.txt\""
    );
    assert_eq!(r.headers()["content-length"], "10");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello file");
    // Another team's file, an unknown id, a non-integer id, the slashed form.
    assert_eq!(
        app.get(&format!("/api/files/{}/content", f.id), &other.key)
            .await
            .status(),
        404
    );
    let r = app.get("/api/files/999999/content", &team.key).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Not found."})
    );
    assert_eq!(
        app.get("/api/files/abc/content", &team.key).await.status(),
        404
    );
    assert_eq!(
        app.get(&format!("/api/files/{}/content/", f.id), &team.key)
            .await
            .status(),
        404
    );
    // Accept: application/json cannot be satisfied.
    let r = app
        .request(
            reqwest::Method::GET,
            &format!("/api/files/{}/content", f.id),
            Some(&team.key),
        )
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    // Archived files and files whose bytes are gone are not found.
    sea_orm::ConnectionTrait::execute_unprepared(
        db,
        &format!("UPDATE files SET is_archived = true WHERE id = {}", f.id),
    )
    .await
    .unwrap();
    assert_eq!(
        app.get(&format!("/api/files/{}/content", f.id), &team.key)
            .await
            .status(),
        404
    );
    let g = app
        .stored_file(team.id, ("gone.bin", ""), "assistant", b"x")
        .await;
    sea_orm::ConnectionTrait::execute_unprepared(
        db,
        &format!(
            "UPDATE files SET storage_key = 'nothing/here' WHERE id = {}",
            g.id
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        app.get(&format!("/api/files/{}/content", g.id), &team.key)
            .await
            .status(),
        404
    );
    // No key at all.
    let r = app
        .client
        .get(app.url(&format!("/api/files/{}/content", g.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
});
