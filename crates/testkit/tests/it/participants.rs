//! `/api/participants` over HTTP.

use chatstudio_testkit::contract::assert_schema;
use chatstudio_testkit::{TestApp, both_backends};
use serde_json::{Value, json};

both_backends!(
    upsert_creates_updates_and_replaces,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let a = app.chatbot(&team, "Alpha").await;
        let b = app.chatbot(&team, "Beta").await;
        let (s, v) = app
            .post_json(
                "/api/participants",
                &team.key,
                &json!({"identifier": "part1", "data": [
                    {"experiment": a, "data": {"name": "John"}},
                    {"experiment": b},
                ]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_schema("ParticipantDetail", &v);
        assert_eq!(v["identifier"], "part1");
        assert_eq!(v["name"], "");
        assert_eq!(v["platform"], "api");
        assert_eq!(
            v["data"],
            json!([
                {"chatbot": "Alpha", "chatbot_id": a, "data": {"name": "John"}, "connect_channel_id": null},
                {"chatbot": "Beta", "chatbot_id": b, "data": {}, "connect_channel_id": null},
            ])
        );
        // Second call: data replaced (not merged), name set; omitted data untouched; trailing slash works.
        let (s, v) = app
            .post_json(
                "/api/participants/",
                &team.key,
                &json!({"identifier": "part1", "name": "Harry", "data": [
            {"experiment": a, "data": {"age": 3}}, {"experiment": b, "data": {}}]}),
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(v["name"], "Harry");
        assert_eq!(v["data"][0]["data"], json!({"age": 3}));
        assert_eq!(v["data"][1]["data"], json!({}));
        assert_eq!(app.scalar("SELECT COUNT(*) FROM participants").await, 1);
        // Data the engine sees is the stored data.
        let pid = app.scalar("SELECT id FROM participants").await;
        let fam = app
            .scalar("SELECT id FROM chatbots WHERE name = 'Alpha'")
            .await;
        let data = domain::participants::data::get(
            &app.domain.db.read,
            domain::ParticipantId(pid),
            domain::ChatbotId(fam),
        )
        .await
        .unwrap();
        assert_eq!(data, json!({"age": 3}));
        // The response lists all of the participant's chatbots, even those not in the request.
        let (_, v) = app
            .post_json(
                "/api/participants",
                &team.key,
                &json!({"identifier": "part1", "data": []}),
            )
            .await;
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
    }
);

both_backends!(upsert_is_all_or_nothing, async |app: &TestApp| {
    let team = app.team("a").await;
    let other = app.team("b").await;
    let a = app.chatbot(&team, "Alpha").await;
    let theirs = app.chatbot(&other, "Theirs").await;
    let missing = uuid::Uuid::new_v4();
    let (s, v) = app
        .post_json("/api/participants", &team.key, &json!({"identifier": "new-person", "name": "N", "data": [
            {"experiment": a, "data": {"x": 1}, "schedules": [{"name": "n", "prompt": "p", "date": "2030-01-01T00:00:00Z"}]},
            {"experiment": theirs},
            {"experiment": missing},
        ]}))
        .await;
    assert_eq!(s, 404);
    let mut messages: Vec<String> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    messages.sort();
    let mut expected = vec![
        format!("Experiment {theirs} not found"),
        format!("Experiment {missing} not found"),
    ];
    expected.sort();
    assert_eq!(messages, expected);
    for t in ["participants", "participant_data", "schedules"] {
        assert_eq!(
            app.scalar(&format!("SELECT COUNT(*) FROM {t}")).await,
            0,
            "{t} untouched"
        );
    }
    // Validation errors align with the input lists.
    let (s, v) = app
        .post_json("/api/participants", &team.key, &json!({"identifier": " ", "platform": "fax", "data": [
            {"experiment": a}, {"experiment": "nope", "data": [1]},
            {"experiment": a, "schedules": [{"delete": true}, {"name": "x"}, {"id": "i", "name": "n", "prompt": "p", "date": "soon"}]}]}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["identifier"], json!(["This field may not be blank."]));
    assert_eq!(v["platform"], json!(["\"fax\" is not a valid choice."]));
    assert_eq!(v["data"][0], json!({}));
    assert_eq!(
        v["data"][1],
        json!({"experiment": ["Must be a valid UUID."], "data": ["Expected a dictionary of items."]})
    );
    assert_eq!(
        v["data"][2]["schedules"],
        json!([
            {"non_field_errors": ["Schedule ID is required to delete a schedule"]},
            {"non_field_errors": ["Schedule Name, Prompt, and Date are required to create or update a schedule"]},
            {"date": ["Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]},
        ])
    );
    let (s, v) = app
        .post_json("/api/participants", &team.key, &json!({"identifier": "x"}))
        .await;
    assert_eq!((s, v), (400, json!({"data": ["This field is required."]})));
    // Read-only keys write nothing.
    let (s, _) = app
        .post_json(
            "/api/participants",
            &team.read_only_key,
            &json!({"identifier": "x", "data": []}),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM participants").await, 0);
});

both_backends!(schedules_create_update_delete, async |app: &TestApp| {
    let team = app.team("a").await;
    let a = app.chatbot(&team, "Alpha").await;
    let post = async |schedules: Value| {
        let (s, v) = app
            .post_json(
                "/api/participants",
                &team.key,
                &json!({"identifier": "p", "data": [{"experiment": a, "schedules": schedules}]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    };
    post(json!([
        {"id": "sched1", "name": "Walk", "prompt": "Remind to walk", "date": "2030-01-01T09:00:00Z"},
        {"id": "sched2", "name": "Drink", "prompt": "Remind to drink", "date": "2030-01-02"},
    ]))
    .await;
    let rows = app
        .rows(
            "SELECT external_id, name, prompt, status FROM schedules ORDER BY external_id",
            &["id", "name", "prompt", "status"],
        )
        .await;
    assert_eq!(
        rows,
        vec![
            json!({"id": "sched1", "name": "Walk", "prompt": "Remind to walk", "status": "scheduled"}),
            json!({"id": "sched2", "name": "Drink", "prompt": "Remind to drink", "status": "scheduled"}),
        ]
    );
    let params = app
        .rows(
            "SELECT CAST(params AS TEXT) FROM schedules WHERE external_id = 'sched1'",
            &["p"],
        )
        .await;
    let p: Value = match &params[0]["p"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    assert_eq!(
        p,
        json!({"name": "Walk", "prompt_text": "Remind to walk", "repetitions": 1, "frequency": 1, "time_period": "days"})
    );
    // Update one, delete the other, add one without an id, all in one request.
    post(json!([
        {"id": "sched1", "name": "Run", "prompt": "Remind to run", "date": "2030-02-01T09:00:00+01:00"},
        {"id": "sched2", "delete": true},
        {"name": "New", "prompt": "Something new", "date": "2030-03-01T00:00:00Z"},
        {"id": "unknown", "delete": true},
    ]))
    .await;
    let rows = app
        .rows(
            "SELECT external_id, name, status FROM schedules ORDER BY id",
            &["id", "name", "status"],
        )
        .await;
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        json!({"id": "sched1", "name": "Run", "status": "scheduled"})
    );
    assert_eq!(rows[1]["status"], "cancelled");
    assert_eq!(rows[2]["name"], "New");
    assert_eq!(rows[2]["id"].as_str().unwrap().len(), 5);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM schedules WHERE cancelled_at IS NOT NULL AND cancelled_by IS NOT NULL").await, 1);
    // The same schedule without an id again is a new schedule.
    post(json!([{"name": "New", "prompt": "Something new", "date": "2030-03-01T00:00:00Z"}])).await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM schedules WHERE name = 'New'")
            .await,
        2
    );
    // Updating a cancelled schedule does not revive it.
    post(json!([{"id": "sched2", "name": "Drink", "prompt": "again", "date": "2030-04-01"}])).await;
    assert_eq!(
        app.rows(
            "SELECT status FROM schedules WHERE external_id = 'sched2'",
            &["s"]
        )
        .await[0]["s"],
        "cancelled"
    );
});

both_backends!(list_filters, async |app: &TestApp| {
    let team = app.team("a").await;
    let a = app.chatbot(&team, "Alpha").await;
    let b = app.chatbot(&team, "Beta").await;
    for (id, platform, bots) in [
        ("p1", "api", vec![a, b]),
        ("p2", "telegram", vec![a]),
        ("p3", "api", vec![]),
    ] {
        let data: Vec<Value> = bots
            .iter()
            .map(|x| json!({"experiment": x, "data": {"who": id}}))
            .collect();
        let (s, _) = app
            .post_json(
                "/api/participants",
                &team.key,
                &json!({"identifier": id, "platform": platform, "data": data}),
            )
            .await;
        assert_eq!(s, 200);
    }
    let other = app.team("b").await;
    app.post_json(
        "/api/participants",
        &other.key,
        &json!({"identifier": "p1", "data": []}),
    )
    .await;
    let ids = |v: &Value| -> Vec<String> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["identifier"].as_str().unwrap().to_string())
            .collect()
    };
    let all = app.get_json("/api/participants", &team.read_only_key).await;
    assert_schema("PaginatedParticipantDetailList", &all);
    assert_eq!(ids(&all), ["p3", "p2", "p1"]);
    assert_eq!(all["count"], 3);
    assert_eq!(
        ids(&app
            .get_json("/api/participants/?platform=telegram", &team.key)
            .await),
        ["p2"]
    );
    assert_eq!(
        ids(&app
            .get_json("/api/participants?identifier=p1", &team.key)
            .await),
        ["p1"]
    );
    let by_bot = app
        .get_json(&format!("/api/participants?chatbot={b}"), &team.key)
        .await;
    assert_eq!(ids(&by_bot), ["p1"]);
    assert_eq!(
        by_bot["results"][0]["data"].as_array().unwrap().len(),
        1,
        "data narrowed to the chatbot"
    );
    assert_eq!(
        ids(&app
            .get_json(&format!("/api/participants?experiment={a}"), &team.key)
            .await),
        ["p2", "p1"]
    );
    assert_eq!(
        ids(&app
            .get_json(
                &format!("/api/participants?chatbot={b}&experiment={a}"),
                &team.key
            )
            .await),
        ["p1"],
        "chatbot wins"
    );
    let nil = app
        .get_json(
            "/api/participants?chatbot=00000000-0000-0000-0000-000000000000",
            &team.key,
        )
        .await;
    assert_eq!(nil["count"], 0);
    let r = app.get("/api/participants?experiment=bad", &team.key).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"experiment": "Must be a valid UUID."})
    );
    let page = app
        .get_json("/api/participants?page_size=2", &team.key)
        .await;
    let next = page["next"].as_str().unwrap();
    let page2 = app.get_json(&next[app.base.len()..], &team.key).await;
    assert_eq!(ids(&page2), ["p1"]);
    assert!(page2.get("count").is_none());
});
