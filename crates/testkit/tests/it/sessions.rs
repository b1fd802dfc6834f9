//! `/api/sessions/…` over HTTP, bodies checked against the contract.

use std::collections::HashSet;

use chatstudio_testkit::contract::assert_schema;
use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use reqwest::Method;
use serde_json::{Value, json};

/// Keys of a JSON object's top level, in the order they appear in the text.
fn top_level_keys(text: &str) -> Vec<String> {
    let (mut depth, mut in_str, mut esc, mut cur, mut keys) =
        (0, false, false, String::new(), Vec::new());
    let mut after_string_at_depth1 = None;
    for c in text.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
                if depth == 1 {
                    after_string_at_depth1 = Some(std::mem::take(&mut cur));
                }
                continue;
            }
            if depth == 1 {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ':' if depth == 1 => {
                if let Some(k) = after_string_at_depth1.take() {
                    keys.push(k);
                }
            }
            _ => {}
        }
        if !matches!(c, ':' | '"') {
            after_string_at_depth1 = None;
        }
    }
    keys
}

async fn create(app: &TestApp, team: &TestTeam, body: Value) -> Value {
    let (s, v) = app.post_json("/api/sessions/", &team.key, &body).await;
    assert_eq!(s, 201, "{v}");
    assert_schema("ExperimentSession", &v);
    v
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = app.request(method, path, Some(key));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

both_backends!(create_and_retrieve, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.chatbot(&team, "Bot").await;
    let r = app
        .request(Method::POST, "/api/sessions/", Some(&team.key))
        .json(&json!({"experiment": bot, "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            "state": {"step": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let s: Value = r.json().await.unwrap();
    assert_eq!(location, s["url"]);
    assert_eq!(s["status"], "setup");
    assert_eq!(s["platform"], Value::Null);
    assert_eq!(s["state"], json!({"step": 1}));
    assert_eq!(
        s["participant"],
        json!({"identifier": "owner@a.chatstudio.local", "remote_id": ""})
    );
    assert_eq!(s["team"], json!({"name": "a", "slug": "a"}));
    assert_eq!(s["experiment"]["id"], bot.to_string());
    assert_eq!(
        s["experiment"]["url"],
        format!("{}/api/experiments/{bot}/", app.base)
    );
    let id = s["id"].as_str().unwrap();
    let d = app
        .get_json(&format!("/api/sessions/{id}/"), &team.key)
        .await;
    assert_schema("ExperimentSessionWithMessages", &d);
    // Top-level keys in the original's order.
    let text = app
        .get(&format!("/api/sessions/{id}/"), &team.key)
        .await
        .text()
        .await
        .unwrap();
    let order = [
        "url",
        "id",
        "team",
        "experiment",
        "participant",
        "created_at",
        "updated_at",
        "status",
        "platform",
        "messages",
        "usage",
        "tags",
        "state",
    ];
    assert_eq!(top_level_keys(&text), order);
    let roles: Vec<&str> = d["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"]);
    assert_eq!(
        d["usage"],
        json!({"total_cost": "0.00000000", "by_model": []})
    );
    // A named participant; another team's chatbot is 404; a chatbot nowhere is 400.
    let s = create(
        app,
        &team,
        json!({"experiment": bot, "participant": "  p-1 "}),
    )
    .await;
    assert_eq!(s["participant"]["identifier"], "p-1");
    let other = app.team("b").await;
    let theirs = app.chatbot(&other, "Theirs").await;
    let (st, v) = app
        .post_json("/api/sessions/", &team.key, &json!({"experiment": theirs}))
        .await;
    assert_eq!((st, v), (404, json!({"detail": "Experiment not found"})));
    let nowhere = uuid::Uuid::new_v4();
    let (st, v) = app
        .post_json("/api/sessions/", &team.key, &json!({"experiment": nowhere}))
        .await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"experiment": [format!("Object with public_id={nowhere} does not exist.")]})
        )
    );
    // Field errors.
    let (st, v) = app.post_json("/api/sessions/", &team.key, &json!({})).await;
    assert_eq!(
        (st, v),
        (400, json!({"experiment": ["This field is required."]}))
    );
    let (st, v) = app
        .post_json("/api/sessions/", &team.key, &json!({"experiment": "nope"}))
        .await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"experiment": ["\u{201c}nope\u{201d} is not a valid UUID."]})
        )
    );
    let (st, v) = app
        .post_json("/api/sessions/", &team.key, &json!({"experiment": bot, "messages": [{"role": "user", "content": "ok"}, {"role": "bot", "content": ""}], "state": null}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["messages"],
        json!([{}, {"role": ["\"bot\" is not a valid choice."], "content": ["This field may not be blank."]}])
    );
    assert_eq!(v["state"], json!(["This field may not be null."]));
    // Another team's session is invisible; a read-only key cannot create.
    let (st, _) = send(
        app,
        Method::GET,
        &format!("/api/sessions/{id}/"),
        &other.key,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let before = app.scalar("SELECT COUNT(*) FROM sessions").await;
    let (st, _) = app
        .post_json(
            "/api/sessions/",
            &team.read_only_key,
            &json!({"experiment": bot}),
        )
        .await;
    assert_eq!(st, 403);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, before);
    let (st, v) = send(app, Method::GET, "/api/sessions/nope/", &team.key, None).await;
    assert_eq!(
        (st, v),
        (
            404,
            json!({"detail": "No ExperimentSession matches the given query."})
        )
    );
});

both_backends!(actions_end_tags_state, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.chatbot(&team, "Bot").await;
    let s = create(app, &team, json!({"experiment": bot})).await;
    let id = s["id"].as_str().unwrap();
    let tags = format!("/api/sessions/{id}/tags/");
    // End, twice: always pending-review, empty body.
    for _ in 0..2 {
        let r = app
            .request(
                Method::POST,
                &format!("/api/sessions/{id}/end_experiment_session/"),
                Some(&team.key),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "");
        let d = app
            .get_json(&format!("/api/sessions/{id}/"), &team.key)
            .await;
        assert_eq!(d["status"], "pending-review");
    }
    let (st, v) = send(
        app,
        Method::POST,
        "/api/sessions/nope/end_experiment_session/",
        &team.key,
        None,
    )
    .await;
    assert_eq!((st, v), (404, json!({"error": "Session not found:{id}"})));

    // Tags: idempotent add, remove returns what is left, unknown names ignored.
    let (st, v) = send(
        app,
        Method::POST,
        &tags,
        &team.key,
        Some(json!({"tags": ["interesting", "duplicate"]})),
    )
    .await;
    assert_eq!(
        (st, v),
        (200, json!({"tags": ["duplicate", "interesting"]}))
    );
    let (_, v) = send(
        app,
        Method::POST,
        &tags,
        &team.key,
        Some(json!({"tags": ["duplicate"]})),
    )
    .await;
    assert_eq!(v, json!({"tags": ["duplicate", "interesting"]}));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM tags").await, 2);
    let (st, v) = send(
        app,
        Method::DELETE,
        &tags,
        &team.key,
        Some(json!({"tags": ["interesting", "unknown"]})),
    )
    .await;
    assert_eq!((st, v), (200, json!({"tags": ["duplicate"]})));
    // System tags of the same name survive a delete.
    let sid = app
        .scalar(&format!(
            "SELECT id FROM sessions WHERE external_id = '{id}'"
        ))
        .await;
    let sys = domain::tags::ensure(
        &app.domain.db.write,
        team.id,
        "duplicate",
        true,
        "bot_response",
        None,
    )
    .await
    .unwrap();
    app.scalar(&format!("SELECT COUNT(*) FROM sessions WHERE id = {sid}"))
        .await;
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.domain.db.write,
        &format!("INSERT INTO session_tags (team_id, session_id, tag_id, created_at) VALUES ({}, {sid}, {sys}, '2026-01-01T00:00:00Z')", team.id),
    )
    .await
    .unwrap();
    let (_, v) = send(
        app,
        Method::DELETE,
        &tags,
        &team.key,
        Some(json!({"tags": ["duplicate"]})),
    )
    .await;
    assert_eq!(v, json!({"tags": ["duplicate"]}), "only the user tag went");
    // Validation comes before the lookup.
    for (body, msg) in [
        (json!({}), "Missing 'tags' in request"),
        (json!({"tags": []}), "Missing 'tags' in request"),
        (json!({"tags": "x"}), "'tags' must be a list"),
        (
            json!({"tags": ["ok", " "]}),
            "'tags' must be a list of non-empty strings",
        ),
        (
            json!({"tags": [1]}),
            "'tags' must be a list of non-empty strings",
        ),
    ] {
        let (st, v) = send(
            app,
            Method::POST,
            "/api/sessions/nope/tags/",
            &team.key,
            Some(body),
        )
        .await;
        assert_eq!((st, v), (400, json!({"error": msg})));
    }
    let (st, v) = send(
        app,
        Method::POST,
        "/api/sessions/nope/tags/",
        &team.key,
        Some(json!({"tags": ["a"]})),
    )
    .await;
    assert_eq!((st, v), (404, json!({"error": "Session not found: nope"})));

    // State: replaced, not merged; falsy refused.
    let state = format!("/api/sessions/{id}/update_state/");
    let (st, v) = send(
        app,
        Method::PATCH,
        &state,
        &team.key,
        Some(json!({"state": {"a": 1}})),
    )
    .await;
    assert_eq!((st, v), (200, json!({"success": true, "state": {"a": 1}})));
    // One rule for NUL on both databases: refused, naming the field, nothing changed.
    let (st, v) = send(
        app,
        Method::PATCH,
        &state,
        &team.key,
        Some(json!({"state": {"b": "x\u{0000}y"}})),
    )
    .await;
    assert_eq!(
        (st, v),
        (400, json!({"state": ["Null characters are not allowed."]}))
    );
    let (_, v) = send(
        app,
        Method::PATCH,
        &state,
        &team.key,
        Some(json!({"state": {"b": "x\u{0007}y"}})),
    )
    .await;
    assert_eq!(v["state"], json!({"b": "x\u{0007}y"}));
    let d = app
        .get_json(&format!("/api/sessions/{id}/"), &team.key)
        .await;
    assert_eq!(
        d["state"],
        json!({"b": "xy"}),
        "replaced, control characters stripped"
    );
    for body in [
        json!({}),
        json!({"state": {}}),
        json!({"state": null}),
        json!({"state": 0}),
    ] {
        let (st, v) = send(app, Method::PATCH, &state, &team.key, Some(body)).await;
        assert_eq!(
            (st, v),
            (400, json!({"error": "Missing 'state' in request"}))
        );
    }
    let (st, v) = send(
        app,
        Method::PATCH,
        "/api/sessions/nope/update_state/",
        &team.key,
        Some(json!({"state": {"a": 1}})),
    )
    .await;
    assert_eq!((st, v), (404, json!({"error": "Session not found: nope"})));

    // Read-only keys and other teams change nothing.
    let other = app.team("b").await;
    for (m, p, b) in [
        (
            Method::POST,
            format!("/api/sessions/{id}/end_experiment_session/"),
            None,
        ),
        (Method::POST, tags.clone(), Some(json!({"tags": ["ro"]}))),
        (
            Method::DELETE,
            tags.clone(),
            Some(json!({"tags": ["duplicate"]})),
        ),
        (
            Method::PATCH,
            state.clone(),
            Some(json!({"state": {"ro": true}})),
        ),
    ] {
        let (st, _) = send(app, m.clone(), &p, &team.read_only_key, b.clone()).await;
        assert_eq!(st, 403, "{m} {p}");
        let (st, _) = send(app, m.clone(), &p, &other.key, b).await;
        assert_eq!(st, 404, "{m} {p}");
    }
    let d = app
        .get_json(&format!("/api/sessions/{id}/"), &team.key)
        .await;
    assert_eq!(d["state"], json!({"b": "xy"}));
    assert_eq!(d["tags"], json!(["duplicate"]));
});

both_backends!(list_filters_and_pagination, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let other_bot = app.chatbot(&team, "Other").await;
    let mut ids = Vec::new();
    for i in 0..300 {
        let b = if i % 3 == 0 { other_bot } else { bot };
        let s = create(
            app,
            &team,
            json!({"experiment": b, "participant": format!("p{i}")}),
        )
        .await;
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    // Another team's sessions never show.
    let other = app.team("b").await;
    let ob = app.chatbot(&other, "X").await;
    create(app, &other, json!({"experiment": ob})).await;

    // Pagination: every session once, newest first; ascending with ordering.
    let mut seen = Vec::new();
    let mut url = "/api/sessions/?page_size=37".to_string();
    let mut first = true;
    loop {
        let page = app.get_json(&url, &team.key).await;
        assert_schema("PaginatedExperimentSessionList", &page);
        assert_eq!(page.get("count").is_some(), first);
        if first {
            assert_eq!(page["count"], 300);
        }
        first = false;
        seen.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(n) => url = n[app.base.len()..].to_string(),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let asc = app
        .get_json("/api/sessions/?ordering=created_at&page_size=5", &team.key)
        .await;
    let asc_ids: Vec<&str> = asc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        asc_ids,
        ids[..5].iter().map(String::as_str).collect::<Vec<_>>()
    );
    // A cursor of one ordering is not valid for the other.
    let next = asc["next"]
        .as_str()
        .unwrap()
        .replace("ordering=created_at", "ordering=-created_at");
    let (st, _) = send(app, Method::GET, &next[app.base.len()..], &team.key, None).await;
    assert_eq!(st, 404);

    // experiment filter.
    let page = app
        .get_json(
            &format!("/api/sessions/?experiment={other_bot}&page_size=1"),
            &team.key,
        )
        .await;
    assert_eq!(page["count"], 100);
    let (st, v) = send(
        app,
        Method::GET,
        "/api/sessions/?experiment=xyz",
        &team.key,
        None,
    )
    .await;
    assert_eq!(
        (st, v),
        (400, json!({"experiment": ["\"xyz\" is not a valid UUID."]}))
    );
    let page = app
        .get_json(
            &format!("/api/sessions/?experiment={}", uuid::Uuid::new_v4()),
            &team.key,
        )
        .await;
    assert_eq!(page["count"], 0);

    // tags filter: a session with both tags appears once and counts once.
    let tag = async |id: &str, names: Value| {
        let (st, _) = send(
            app,
            Method::POST,
            &format!("/api/sessions/{id}/tags/"),
            &team.key,
            Some(json!({"tags": names})),
        )
        .await;
        assert_eq!(st, 200);
    };
    tag(&ids[1], json!(["interesting", "awesome"])).await;
    tag(&ids[2], json!(["awesome"])).await;
    tag(&ids[3], json!(["boring"])).await;
    let page = app
        .get_json("/api/sessions/?tags=interesting,awesome", &team.key)
        .await;
    assert_eq!(page["count"], 2);
    let got: HashSet<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, HashSet::from([ids[1].as_str(), ids[2].as_str()]));
    assert_eq!(
        page["results"][0]["tags"],
        json!(["awesome"]),
        "newest first: ids[2]"
    );
    // Filters combine with AND.
    let page = app
        .get_json(
            &format!("/api/sessions/?tags=awesome&experiment={bot}"),
            &team.key,
        )
        .await;
    assert_eq!(page["count"], 2);
    let page = app
        .get_json(
            &format!("/api/sessions/?tags=boring&experiment={bot}"),
            &team.key,
        )
        .await;
    assert_eq!(page["count"], 0, "ids[3] belongs to the other chatbot");

    // versions filter: replies carry version tags.
    let turn = |msg: &str| json!({"message": msg});
    app.post_json(
        &format!("/channels/api/{bot}/incoming_message"),
        &team.key,
        &turn("before publishing"),
    )
    .await;
    app.publish(&team, bot, "", true).await;
    app.post_json(
        &format!("/channels/api/{bot}/incoming_message"),
        &team.key,
        &turn("after"),
    )
    .await;
    let v1 = app.get_json("/api/sessions/?versions=v1", &team.key).await;
    assert_eq!(v1["count"], 1);
    let unreleased = app
        .get_json("/api/sessions/?versions=v1-unreleased,v1", &team.key)
        .await;
    assert_eq!(unreleased["count"], 1, "one session, counted once");
    let d = app
        .get_json(
            &format!(
                "/api/sessions/{}/",
                v1["results"][0]["id"].as_str().unwrap()
            ),
            &team.key,
        )
        .await;
    let msg_tags: Vec<Value> = d["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tags"].clone())
        .collect();
    assert_eq!(
        msg_tags,
        vec![
            json!([]),
            json!(["v1-unreleased"]),
            json!([]),
            json!(["v1"])
        ]
    );
});

both_backends!(
    detail_shows_summaries_attachments_and_usage,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.chatbot(&team, "Bot").await;
        let s = create(app, &team, json!({"experiment": bot, "messages": [
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"}]})).await;
        let id = s["id"].as_str().unwrap();
        let sid = app
            .scalar(&format!(
                "SELECT id FROM sessions WHERE external_id = '{id}'"
            ))
            .await;
        let third = app
            .scalar(&format!(
                "SELECT MAX(id) FROM messages WHERE session_id = {sid}"
            ))
            .await;
        let db = &app.domain.db.write;
        sea_orm::ConnectionTrait::execute_unprepared(
            db,
            &format!("UPDATE messages SET summary = 'they said one and two' WHERE id = {third}"),
        )
        .await
        .unwrap();
        let file = app
            .stored_file(
                team.id,
                ("notes.txt", "text/plain"),
                "message_media",
                b"hello",
            )
            .await;
        domain::files::attach_to_session(db, sid, file.id, "ocs_attachments")
            .await
            .unwrap();
        sea_orm::ConnectionTrait::execute_unprepared(
        db,
        &format!("UPDATE messages SET metadata = '{{\"ocs_attachment_file_ids\": [{}], \"openai_run_id\": \"r\", \"trace_info\": [1]}}' WHERE id = {third}", file.id),
    )
    .await
    .unwrap();
        // Usage: gpt-4o 1.00 + 2.00 (100 + 200 tokens), gpt-4o-mini 0.50 (50 tokens).
        for (model, cost, q) in [
            ("gpt-4o", 100_000_000, 100),
            ("gpt-4o", 200_000_000, 200),
            ("gpt-4o-mini", 50_000_000, 50),
        ] {
            sea_orm::ConnectionTrait::execute_unprepared(
            db,
            &format!(
                "INSERT INTO usage_records (team_id, session_id, source, service_kind, provider_kind, model_name, quantity, cost_e8, currency, confidence, created_at) \
                 VALUES ({}, {sid}, 'chat', 'llm_input', 'openai', '{model}', {q}, {cost}, 'USD', 'exact', '2026-01-01T00:00:00Z')",
                team.id
            ),
        )
        .await
        .unwrap();
        }
        let d = app
            .get_json(&format!("/api/sessions/{id}/"), &team.key)
            .await;
        assert_schema("ExperimentSessionWithMessages", &d);
        let msgs = d["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[2]["role"], "system");
        assert_eq!(msgs[2]["content"], "they said one and two");
        assert_eq!(
            msgs[2]["metadata"],
            json!({"compression_marker": "summarize"})
        );
        assert_eq!(msgs[2]["created_at"], msgs[3]["created_at"]);
        assert_eq!(
            msgs[3]["metadata"],
            json!({"ocs_attachment_file_ids": [file.id], "trace_info": [1]})
        );
        assert_eq!(
            msgs[3]["attachments"],
            json!([{"name": "notes.txt", "content_type": "text/plain", "size": 5, "content_url": format!("{}/api/files/{}/content", app.base, file.id)}])
        );
        assert_eq!(
            d["usage"],
            json!({"total_cost": "3.50000000", "by_model": [
            {"model_name": "gpt-4o", "cost": "3.00000000", "tokens": 300},
            {"model_name": "gpt-4o-mini", "cost": "0.50000000", "tokens": 50}]})
        );
    }
);

both_backends!(
    reads_are_a_fixed_number_of_statements,
    // No background workers: their polling would be counted too.
    chatstudio_testkit::Options::no_workers(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.chatbot(&team, "Bot").await;
        let statements = async |path: String| {
            let before = app.domain.db.statement_count();
            app.get_json(&path, &team.key).await;
            app.domain.db.statement_count() - before
        };
        let s = create(
            app,
            &team,
            json!({"experiment": bot, "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
        let id = s["id"].as_str().unwrap().to_string();
        let list_small = statements("/api/sessions/".into()).await;
        let detail_small = statements(format!("/api/sessions/{id}/")).await;
        let parts_small = statements("/api/participants".into()).await;
        let bots_small = statements("/api/experiments/".into()).await;
        for i in 0..40 {
            let b = app.chatbot(&team, &format!("Bot {i}")).await;
            app.publish(&team, b, "", true).await;
            create(app, &team, json!({"experiment": b, "participant": format!("p{i}"), "messages": [{"role": "user", "content": "x"}]})).await;
            let (st, _) = send(
                app,
                Method::POST,
                &format!("/api/sessions/{id}/tags/"),
                &team.key,
                Some(json!({"tags": [format!("t{i}")]})),
            )
            .await;
            assert_eq!(st, 200);
        }
        let sid = app
            .scalar(&format!(
                "SELECT id FROM sessions WHERE external_id = '{id}'"
            ))
            .await;
        let tx = app.domain.begin().await.unwrap();
        for _ in 0..50 {
            domain::messages::insert(
                &tx,
                team.id,
                domain::SessionId(sid),
                domain::messages::MessageRole::Ai,
                "y",
                json!({}),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        assert_eq!(
            statements("/api/sessions/".into()).await,
            list_small,
            "session list"
        );
        assert_eq!(
            statements(format!("/api/sessions/{id}/")).await,
            detail_small,
            "session detail"
        );
        assert_eq!(
            statements("/api/participants".into()).await,
            parts_small,
            "participant list"
        );
        assert_eq!(
            statements("/api/experiments/".into()).await,
            bots_small,
            "chatbot list"
        );
        assert!(
            list_small <= 8 && detail_small <= 10,
            "{list_small} {detail_small}"
        );
    }
);
