use std::collections::HashSet;

use chatstudio_testkit::contract::assert_schema;
use chatstudio_testkit::{TestApp, both_backends};
use serde_json::{Value, json};

both_backends!(list_and_retrieve_match_contract, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.chatbot(&team, "Bot").await;
    let list = app.get_json("/api/experiments/", &team.key).await;
    assert_schema("PaginatedExperimentList", &list);
    assert_eq!(list["count"], 1);
    assert_eq!(list["next"], Value::Null);
    assert_eq!(list["previous"], Value::Null);
    let item = &list["results"][0];
    assert_eq!(
        item,
        &json!({
            "id": bot.to_string(),
            "name": "Bot",
            "url": format!("{}/api/experiments/{bot}/", app.base),
            "version_number": 1,
            "versions": [],
        })
    );
    let one = app
        .get_json(&format!("/api/experiments/{bot}/"), &team.key)
        .await;
    assert_schema("Experiment", &one);
    assert_eq!(&one, item);
    // Key order of the envelope follows the original: next, previous, results, count.
    let text = app
        .get("/api/experiments/", &team.key)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.starts_with("{\"next\":null,\"previous\":null,\"results\":["),
        "{text}"
    );
    assert!(text.ends_with(",\"count\":1}"), "{text}");
});

both_backends!(versions_after_publishes, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.chatbot(&team, "Bot").await;
    app.publish(&team, bot, "first", false).await; // first is published anyway
    app.publish(&team, bot, "", false).await;
    let one = app
        .get_json(&format!("/api/experiments/{bot}/"), &team.key)
        .await;
    assert_schema("Experiment", &one);
    assert_eq!(one["version_number"], 3);
    assert_eq!(
        one["versions"],
        json!([
            {"name": "Bot", "version_number": 1, "is_default_version": true, "version_description": "first"},
            {"name": "Bot", "version_number": 2, "is_default_version": false, "version_description": ""},
        ])
    );
    // Renaming the working version does not rename snapshots.
    domain::chatbots::update_working(&app.domain.db.write, team.id, bot, "Renamed", None, None)
        .await
        .unwrap();
    app.publish(&team, bot, "third", true).await;
    let one = app
        .get_json(&format!("/api/experiments/{bot}/"), &team.key)
        .await;
    assert_eq!(one["name"], "Renamed");
    assert_eq!(one["version_number"], 4);
    let flags: Vec<(i64, bool, String)> = one["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version_number"].as_i64().unwrap(),
                v["is_default_version"].as_bool().unwrap(),
                v["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            (1, false, "Bot".into()),
            (2, false, "Bot".into()),
            (3, true, "Renamed".into())
        ]
    );
    // Version 0 resolves to the published snapshot.
    let r = domain::chatbots::resolve(&app.domain.db.read, team.id, bot, Some(0))
        .await
        .unwrap();
    assert_eq!(r.version_number, 3);
    assert!(!r.is_working);
    // A snapshot's own id is not a chatbot on this endpoint.
    let r = app
        .get(&format!("/api/experiments/{}/", r.public_id), &team.key)
        .await;
    assert_eq!(r.status(), 404);
});

both_backends!(
    other_teams_and_archived_are_invisible,
    async |app: &TestApp| {
        let a = app.team("a").await;
        let b = app.team("b").await;
        let mine = app.chatbot(&a, "Mine").await;
        let theirs = app.chatbot(&b, "Theirs").await;
        let r = app
            .get(&format!("/api/experiments/{theirs}/"), &a.key)
            .await;
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({"detail": "No Experiment matches the given query."})
        );
        let list = app.get_json("/api/experiments/", &a.key).await;
        let ids: Vec<&str> = list["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![mine.to_string()]);

        domain::chatbots::archive(&app.domain.db.write, a.id, mine)
            .await
            .unwrap();
        let list = app.get_json("/api/experiments/", &a.key).await;
        assert_eq!(list["count"], 0);
        assert_eq!(list["results"], json!([]));
        assert_eq!(
            app.get(&format!("/api/experiments/{mine}/"), &a.key)
                .await
                .status(),
            404
        );

        // Not a UUID at all.
        let r = app.get("/api/experiments/not-a-uuid/", &a.key).await;
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"detail": "Not found."})
        );
    }
);

both_backends!(
    pagination_visits_every_chatbot_once,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let other = app.team("b").await;
        let mut created = Vec::new();
        for i in 0..250 {
            created.push(app.chatbot(&team, &format!("Bot {i}")).await.to_string());
            if i % 50 == 0 {
                app.chatbot(&other, "noise").await;
            }
        }
        created.reverse(); // newest first
        let mut seen = Vec::new();
        let mut pages = Vec::new();
        let mut url = "/api/experiments/?page_size=7".to_string();
        loop {
            let page = app.get_json(&url, &team.key).await;
            assert_schema("PaginatedExperimentList", &page);
            if pages.is_empty() {
                assert_eq!(page["count"], 250);
                assert_eq!(page["previous"], Value::Null);
            } else {
                assert!(page.get("count").is_none(), "count only on the first page");
            }
            let results = page["results"].as_array().unwrap();
            assert!(results.len() <= 7);
            seen.extend(
                results
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_string()),
            );
            pages.push(page.clone());
            match page["next"].as_str() {
                Some(next) => {
                    assert!(next.starts_with(&app.base), "absolute next link: {next}");
                    assert!(next.contains("page_size=7"), "filters carried: {next}");
                    url = next[app.base.len()..].to_string();
                }
                None => break,
            }
        }
        assert_eq!(pages.len(), 36);
        assert_eq!(seen, created, "every chatbot once, newest first");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 250);

        // Walking back from the last page retraces the same pages.
        let mut back = Vec::new();
        let mut prev = pages.last().unwrap()["previous"]
            .as_str()
            .map(str::to_string);
        while let Some(p) = prev {
            let page = app.get_json(&p[app.base.len()..], &team.key).await;
            back.push(page["results"].clone());
            prev = page["previous"].as_str().map(str::to_string);
        }
        let expected: Vec<Value> = pages[..pages.len() - 1]
            .iter()
            .rev()
            .map(|p| p["results"].clone())
            .collect();
        assert_eq!(back, expected);
    }
);

both_backends!(bad_cursors_are_4xx, async |app: &TestApp| {
    let team = app.team("a").await;
    for i in 0..3 {
        app.chatbot(&team, &format!("Bot {i}")).await;
    }
    for bad in [
        "garbage",
        "cD0yMDIxLTAxLTAxKzEyJTNBMDAlM0EwMC4xMjM0NTYlMkIwMCUzQTAw",
        "bz0yJnI9MQ==",
        "a.b",
        "%ff%fe",
    ] {
        let r = app
            .get(&format!("/api/experiments/?cursor={bad}"), &team.key)
            .await;
        assert_eq!(r.status(), 404, "{bad}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"detail": "Invalid cursor"})
        );
    }
    // A cursor minted by another instance (another signing key) is foreign.
    let page = app
        .get_json("/api/experiments/?page_size=1", &team.key)
        .await;
    let next = page["next"].as_str().unwrap().to_string();
    let cursor = next
        .split("cursor=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let other = TestApp::start(chatstudio_testkit::Backend::Sqlite)
        .await
        .unwrap();
    let t2 = other.team("a").await;
    let r = other
        .get(&format!("/api/experiments/?cursor={cursor}"), &t2.key)
        .await;
    assert_eq!(r.status(), 404);
    other.finish().await;
    // A present-but-empty cursor is a first page without a count.
    let page = app.get_json("/api/experiments/?cursor=", &team.key).await;
    assert!(page.get("count").is_none());
    assert_eq!(page["results"].as_array().unwrap().len(), 3);
    // page_size: invalid values fall back to 100; huge ones are capped.
    for ps in ["0", "-1", "abc", "100000"] {
        let page = app
            .get_json(&format!("/api/experiments/?page_size={ps}"), &team.key)
            .await;
        assert_eq!(page["results"].as_array().unwrap().len(), 3, "{ps}");
    }
});
