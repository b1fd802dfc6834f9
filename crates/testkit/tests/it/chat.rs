//! The chat widget API over HTTP, as the widget and server integrations use it.

use chatstudio_testkit::contract::assert_schema;
use chatstudio_testkit::{Options, TestApp, both_backends, event_stream};
use domain::channels::widget::AuthLevel;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use uuid::Uuid;

const ORIGIN: &str = "https://www.example.com";

fn widget(rb: RequestBuilder, key: &str) -> RequestBuilder {
    rb.header("X-Embed-Key", key)
        .header("Origin", ORIGIN)
        .header("x-ocs-widget-version", "0.6.0")
}

use chatstudio_testkit::status_json as call;

async fn start(app: &TestApp, key: &str, bot: Uuid) -> Value {
    let (s, v) = call(widget(app.request(Method::POST, "/api/chat/start/", None), key).json(&json!({
        "chatbot_id": bot, "session_data": {"source": "widget"}, "participant_remote_id": "visitor-1"}))).await;
    assert_eq!(s, 201, "{v}");
    assert_schema("ChatStartSessionResponse", &v);
    v
}

both_backends!(widget_flow_with_embed_key, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let (_, key) = app
        .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
        .await;
    let s = start(app, &key, bot).await;
    assert_eq!(
        s["session_token"],
        Value::Null,
        "embed-key channels issue no token"
    );
    assert!(
        s["participant"]["identifier"]
            .as_str()
            .unwrap()
            .starts_with("anon:")
    );
    assert_eq!(s["participant"]["remote_id"], "visitor-1");
    assert_eq!(s["chatbot"]["id"], bot.to_string());
    let sid = s["session_id"].as_str().unwrap().to_string();
    let (st, v) = call(
        widget(
            app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None),
            &key,
        )
        .json(&json!({"message": "  hello bot  ", "context": {"page": "home"}})),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    assert_schema("ChatSendMessageResponse", &v);
    assert_eq!(v["status"], "processing");
    let task = v["task_id"].as_str().unwrap().to_string();
    let (st, v) = app.wait_task(&sid, &task, |rb| widget(rb, &key)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "complete");
    assert_eq!(v["message"]["content"], "You said: hello bot");
    assert_eq!(v["message"]["role"], "assistant");
    assert_schema("Message", &v["message"]);
    // The message poll sees both, with has_more and a strict `since`.
    let (st, v) = call(widget(
        app.request(Method::GET, &format!("/api/chat/{sid}/poll/"), None),
        &key,
    ))
    .await;
    assert_eq!(st, 200);
    assert_schema("ChatPollResponse", &v);
    assert_eq!(v["session_status"], "active");
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(
        msgs.iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["user", "assistant"]
    );
    assert_eq!(msgs[0]["content"], "hello bot", "trimmed");
    let first = msgs[0]["created_at"].as_str().unwrap().to_string();
    let (_, v) = call(widget(
        app.request(Method::GET, &format!("/api/chat/{sid}/poll/?limit=1"), None),
        &key,
    ))
    .await;
    assert_eq!(
        (v["messages"].as_array().unwrap().len(), &v["has_more"]),
        (1, &json!(true))
    );
    let url = format!("/api/chat/{sid}/poll/?since={}", first.replace('+', "%2B"));
    let (_, v) = call(widget(app.request(Method::GET, &url, None), &key)).await;
    assert_eq!(v["messages"].as_array().unwrap().len(), 1, "strictly after");
    let (st, v) = call(widget(
        app.request(
            Method::GET,
            &format!("/api/chat/{sid}/poll/?since=yesterday"),
            None,
        ),
        &key,
    ))
    .await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"error": "Invalid 'since' parameter format. Use ISO format."})
        )
    );
    let (st, _) = call(widget(
        app.request(
            Method::GET,
            &format!("/api/chat/{sid}/poll/?limit=-1"),
            None,
        ),
        &key,
    ))
    .await;
    assert_eq!(st, 400);
    // context landed in the session state.
    let detail = app
        .get_json(&format!("/api/sessions/{sid}/"), &team.key)
        .await;
    assert_eq!(detail["state"]["remote_context"], json!({"page": "home"}));
    assert_eq!(detail["platform"], "embedded_widget");
    // Without the key (or from elsewhere), nothing.
    let (st, _) = call(app.request(Method::GET, &format!("/api/chat/{sid}/poll/"), None)).await;
    assert_eq!(st, 403);
    let (st, _) = call(
        app.request(Method::GET, &format!("/api/chat/{sid}/poll/"), None)
            .header("X-Embed-Key", &key)
            .header("Origin", "https://evil.org"),
    )
    .await;
    assert_eq!(st, 403);
    // A task of another session is not visible; an unknown task is not found.
    let other = start(app, &key, bot).await;
    let osid = other["session_id"].as_str().unwrap();
    let (st, v) = call(widget(
        app.request(Method::GET, &format!("/api/chat/{osid}/{task}/poll/"), None),
        &key,
    ))
    .await;
    assert_eq!((st, v), (404, json!({"detail": "Not found."})));
    let (st, _) = call(widget(
        app.request(
            Method::GET,
            &format!("/api/chat/{sid}/{}/poll/", Uuid::new_v4()),
            None,
        ),
        &key,
    ))
    .await;
    assert_eq!(st, 404);
});

both_backends!(admission_matrix, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let other_bot = app.chatbot(&team, "Other").await;
    let (ch, key) = app
        .widget(bot, &["*.example.com"], AuthLevel::SessionToken)
        .await;
    let (_, other_key) = app.widget(other_bot, &["*"], AuthLevel::SessionToken).await;
    let body = json!({"chatbot_id": bot});
    let post = |h: &[(&str, &str)], b: &Value| {
        let mut rb = app.request(Method::POST, "/api/chat/start/", None).json(b);
        for (k, v) in h {
            rb = rb.header(*k, *v);
        }
        call(rb)
    };
    // Allowed origins: any subdomain depth, not the apex, not elsewhere, not none.
    let (s, v) = post(
        &[("X-Embed-Key", &key), ("Origin", "https://a.b.example.com")],
        &body,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert!(
        v["session_token"].as_str().is_some(),
        "session-token channels issue a token"
    );
    for origin in ["https://example.com", "https://evil.org"] {
        let (s, v) = post(&[("X-Embed-Key", &key), ("Origin", origin)], &body).await;
        assert_eq!(
            (s, v),
            (
                403,
                json!({"detail": "You do not have permission to perform this action."})
            ),
            "{origin}"
        );
    }
    let (s, _) = post(&[("X-Embed-Key", &key)], &body).await;
    assert_eq!(s, 403, "an origin is required");
    let (s, _) = post(
        &[
            ("X-Embed-Key", &key),
            ("Referer", "https://www.example.com/page"),
        ],
        &body,
    )
    .await;
    assert_eq!(s, 201, "Referer stands in for Origin");
    // Bad keys.
    let (s, v) = post(&[("X-Embed-Key", "ek_nope"), ("Origin", ORIGIN)], &body).await;
    assert_eq!((s, v), (401, json!({"detail": "Invalid widget embed key"})));
    let (s, _) = post(&[("X-Embed-Key", &other_key), ("Origin", ORIGIN)], &body).await;
    assert_eq!(s, 401, "another chatbot's key");
    let (s, v) = post(&[("X-Embed-Key", &key), ("Origin", ORIGIN)], &json!({})).await;
    assert_eq!(
        (s, v),
        (
            400,
            json!({"detail": "Experiment ID required for embedded widget authentication"})
        )
    );
    let (s, v) = post(
        &[("X-Embed-Key", &key), ("Origin", ORIGIN)],
        &json!({"chatbot_id": "nope"}),
    )
    .await;
    assert_eq!(
        (s, v),
        (400, json!({"chatbot_id": ["Must be a valid UUID."]}))
    );
    let (s, _) = post(
        &[("X-Embed-Key", &key), ("Origin", ORIGIN)],
        &json!({"chatbot_id": bot, "participant_remote_id": ""}),
    )
    .await;
    assert_eq!(s, 400);
    // Anonymous callers cannot pick versions.
    let (s, v) = post(
        &[("X-Embed-Key", &key), ("Origin", ORIGIN)],
        &json!({"chatbot_id": bot, "version_number": 0}),
    )
    .await;
    assert_eq!(
        (s, v),
        (
            403,
            json!({"error": "Version number requires authentication"})
        )
    );
    // Keyless: refused unless the chatbot is public.
    let (s, v) = post(&[], &body).await;
    assert_eq!(
        (s, v),
        (
            401,
            json!({"error": "Authentication required to chat with this chatbot", "code": "chat_access_denied"})
        )
    );
    let mut cfg = domain::chatbots::get(&app.domain.db.read, team.id, bot)
        .await
        .unwrap()
        .config;
    cfg["public_chat"] = json!(true);
    domain::chatbots::update_working(&app.domain.db.write, team.id, bot, "Bot", None, Some(cfg))
        .await
        .unwrap();
    let (s, v) = post(&[], &body).await;
    assert_eq!(s, 201, "{v}");
    assert!(v["session_token"].as_str().is_some());
    // Unknown chatbot.
    let (s, v) = post(
        &[("X-Api-Key", &team.key)],
        &json!({"chatbot_id": Uuid::new_v4()}),
    )
    .await;
    assert_eq!(
        (s, v),
        (
            404,
            json!({"detail": "No Experiment matches the given query."})
        )
    );
    // A team API key: a trusted server integration; state and versions allowed.
    app.publish(&team, bot, "", true).await;
    let (s, v) = post(&[("X-Api-Key", &team.key)], &json!({"chatbot_id": bot, "version_number": 1, "session_data": {"plan": "gold"}, "participant_remote_id": "crm-42"})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["participant"]["identifier"], "crm-42");
    let detail = app
        .get_json(
            &format!("/api/sessions/{}/", v["session_id"].as_str().unwrap()),
            &team.key,
        )
        .await;
    assert_eq!(detail["state"], json!({"plan": "gold"}));
    let (s, v) = post(
        &[("X-Api-Key", &team.key)],
        &json!({"chatbot_id": bot, "version_number": 9}),
    )
    .await;
    assert_eq!(
        (s, v),
        (
            404,
            json!({"detail": "Experiment with version 9 not found"})
        )
    );
    let other_team = app.team("b").await;
    let (s, _) = post(&[("X-Api-Key", &other_team.key)], &body).await;
    assert_eq!(s, 404, "another team's key cannot see the chatbot");
    // Disabled, rotated and removed channels.
    domain::channels::widget::set_enabled(
        &app.domain.db.write,
        ch.id,
        false,
        Some("Back soon".into()),
    )
    .await
    .unwrap();
    let (s, v) = post(&[("X-Embed-Key", &key), ("Origin", ORIGIN)], &body).await;
    assert_eq!((s, v), (403, json!({"error": "Back soon"})));
    domain::channels::widget::set_enabled(&app.domain.db.write, ch.id, true, None)
        .await
        .unwrap();
    let new_key = domain::channels::widget::rotate_key(&app.domain.db.write, ch.id)
        .await
        .unwrap();
    let (s, _) = post(&[("X-Embed-Key", &key), ("Origin", ORIGIN)], &body).await;
    assert_eq!(s, 401, "the old key stopped working");
    let (s, _) = post(&[("X-Embed-Key", &new_key), ("Origin", ORIGIN)], &body).await;
    assert_eq!(s, 201);
    domain::channels::widget::remove(&app.domain.db.write, ch.id)
        .await
        .unwrap();
    let (s, _) = post(&[("X-Embed-Key", &new_key), ("Origin", ORIGIN)], &body).await;
    assert_eq!(s, 401, "a removed channel's key works nowhere");
});

both_backends!(session_tokens, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let (_, key) = app
        .widget(bot, &["*.example.com"], AuthLevel::SessionToken)
        .await;
    let s = start(app, &key, bot).await;
    let sid = s["session_id"].as_str().unwrap().to_string();
    let token = s["session_token"].as_str().unwrap().to_string();
    let poll = |tok: Option<&str>, sid: &str| {
        let mut rb = app.request(Method::GET, &format!("/api/chat/{sid}/poll/"), None);
        if let Some(t) = tok {
            rb = rb.header("X-Session-Token", t);
        }
        call(rb)
    };
    assert_eq!(
        poll(Some(&token), &sid).await.0,
        200,
        "the token alone is enough"
    );
    assert_eq!(
        poll(None, &sid).await,
        (
            403,
            json!({"error": "Session token required", "code": "session_token_required"})
        )
    );
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        poll(Some(&tampered), &sid).await,
        (
            403,
            json!({"error": "Invalid session token", "code": "session_token_invalid"})
        )
    );
    let other = start(app, &key, bot).await;
    let other_token = other["session_token"].as_str().unwrap();
    assert_eq!(
        poll(Some(other_token), &sid).await.1["code"],
        "session_token_invalid"
    );
    // The embed key alone does not open a token session.
    let (st, _) = call(widget(
        app.request(Method::GET, &format!("/api/chat/{sid}/poll/"), None),
        &key,
    ))
    .await;
    assert_eq!(st, 403);
    // Message with the token works.
    let (st, _) = call(
        app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None)
            .header("X-Session-Token", &token)
            .json(&json!({"message": "hi"})),
    )
    .await;
    assert_eq!(st, 202);
    // Six days old: fine. Eight days old: expired.
    let age = async |days: i64| {
        let t = (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
        sea_orm::ConnectionTrait::execute_unprepared(
            &app.domain.db.write,
            &format!("UPDATE sessions SET created_at = '{t}' WHERE external_id = '{sid}'"),
        )
        .await
        .unwrap();
    };
    age(6).await;
    assert_eq!(poll(Some(&token), &sid).await.0, 200);
    age(8).await;
    assert_eq!(
        poll(Some(&token), &sid).await,
        (
            403,
            json!({"error": "Session has expired", "code": "session_expired"})
        )
    );
    // A team API key (server integration) still reads it.
    let (st, _) = call(app.request(
        Method::GET,
        &format!("/api/chat/{sid}/poll/"),
        Some(&team.key),
    ))
    .await;
    assert_eq!(st, 200);
    // Unknown sessions are refused without saying more.
    assert_eq!(
        poll(Some(&token), "00000000-0000-0000-0000-000000000000")
            .await
            .0,
        403
    );
});

both_backends!(
    failures_are_reported_through_the_task,
    async |app: &TestApp| {
        let fake = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(wiremock::ResponseTemplate::new(500))
            .mount(&fake)
            .await;
        let team = app.team("a").await;
        app.provider(&team, "down", "openai", Some(&fake.uri()), Some("sk"))
            .await;
        let bot = app
            .llm_chatbot(&team, "down", "gpt-4o", "", json!({}))
            .await;
        let (_, key) = app
            .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
            .await;
        let s = start(app, &key, bot).await;
        let sid = s["session_id"].as_str().unwrap().to_string();
        let (_, v) = call(
            widget(
                app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None),
                &key,
            )
            .json(&json!({"message": "hi"})),
        )
        .await;
        let (st, v) = app
            .wait_task(&sid, v["task_id"].as_str().unwrap(), |rb| widget(rb, &key))
            .await;
        assert_eq!(st, 500);
        assert_schema("ChatTaskPollError", &v);
        assert_eq!(v["status"], "error");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("Sorry something went wrong.")
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'human'")
                .await,
            1,
            "the message was kept"
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'")
                .await,
            1
        );
        // Ended sessions (status complete) take no messages.
        sea_orm::ConnectionTrait::execute_unprepared(
            &app.domain.db.write,
            &format!("UPDATE sessions SET status = 'complete' WHERE external_id = '{sid}'"),
        )
        .await
        .unwrap();
        let (st, v) = call(
            widget(
                app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None),
                &key,
            )
            .json(&json!({"message": "hi"})),
        )
        .await;
        assert_eq!((st, v), (400, json!({"error": "Session has ended"})));
        let (_, v) = call(widget(
            app.request(Method::GET, &format!("/api/chat/{sid}/poll/"), None),
            &key,
        ))
        .await;
        assert_eq!(v["session_status"], "ended");
    }
);

both_backends!(
    user_facing_errors_are_400,
    // No workers in the server: the test runs one after changing the world under the job.
    Options::no_workers(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (_, key) = app
            .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
            .await;
        let s = start(app, &key, bot).await;
        let sid = s["session_id"].as_str().unwrap().to_string();
        app.publish(&team, bot, "", true).await;
        let (_, v) = call(
            widget(
                app.request(
                    Method::POST,
                    &format!("/api/chat/{sid}/message/"),
                    Some(&team.key),
                ),
                &key,
            )
            .json(&json!({"message": "hi", "version_number": 1})),
        )
        .await;
        let task = v["task_id"].as_str().unwrap().to_string();
        let (st, v) = call(widget(
            app.request(Method::GET, &format!("/api/chat/{sid}/{task}/poll/"), None),
            &key,
        ))
        .await;
        assert_eq!(
            (st, v),
            (200, json!({"message": null, "status": "processing"})),
            "queued"
        );
        // The version it asked for disappears before a worker gets to it.
        sea_orm::ConnectionTrait::execute_unprepared(
            &app.domain.db.write,
            "UPDATE chatbots SET is_archived = true WHERE working_version_id IS NOT NULL",
        )
        .await
        .unwrap();
        let workers = app.run_workers(1);
        let (st, v) = app.wait_task(&sid, &task, |rb| widget(rb, &key)).await;
        workers.stop().await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(v["status"], "error");
        assert!(v["error"].as_str().unwrap().contains("Version 1"), "{v}");
    }
);

both_backends!(uploads_and_attachments, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let (_, key) = app
        .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
        .await;
    let sid = start(app, &key, bot).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A fresh connection per upload: a refused 50 MB upload must not poison a pooled one.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let upload = |parts: Vec<(&str, Vec<u8>, &str)>| {
        let mut form = reqwest::multipart::Form::new().text("participant_name", "Ana");
        for (name, bytes, ct) in parts {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(name.to_string())
                    .mime_str(ct)
                    .unwrap(),
            );
        }
        call(
            widget(
                fresh.post(app.url(&format!("/api/chat/{sid}/upload/"))),
                &key,
            )
            .multipart(form),
        )
    };
    let (st, v) = upload(vec![
        ("notes.txt", b"hello".to_vec(), "text/plain"),
        ("data.csv", b"a,b\n1,2".to_vec(), "text/csv"),
    ])
    .await;
    assert_eq!(st, 201, "{v}");
    assert_schema("ChatUploadFileResponse", &v);
    assert_eq!(v["files"][0]["name"], "notes.txt");
    assert_eq!(v["files"][0]["size"], 5);
    assert_eq!(v["files"][0]["content_type"], "text/plain");
    let fid = v["files"][0]["id"].as_i64().unwrap();
    let stored = app.scalar("SELECT COUNT(*) FROM files").await;
    let on_disk = || {
        fn walk(p: &std::path::Path) -> usize {
            std::fs::read_dir(p).map_or(0, |d| {
                d.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        walk(&app.data_dir.path().join("files"))
    };
    let objects = on_disk();
    // Every rejection, and nothing stored by any of them.
    let svg = b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".to_vec();
    for (parts, msg) in [
        (
            vec![("image.bmp", b"BM..".to_vec(), "image/bmp")],
            "The image `image.bmp` is not a supported image type. Supported types: GIF, HEIC, HEIF, JPEG, PNG, WEBP.",
        ),
        (
            vec![("logo.svg", svg.clone(), "text/plain")],
            "The image `logo.svg` is not a supported image type. Supported types: GIF, HEIC, HEIF, JPEG, PNG, WEBP.",
        ),
        (
            vec![("photo.jpg", svg.clone(), "image/jpeg")],
            "The image `photo.jpg` is not a supported image type. Supported types: GIF, HEIC, HEIF, JPEG, PNG, WEBP.",
        ),
        (
            vec![
                ("ok.txt", b"fine".to_vec(), "text/plain"),
                ("archive.zip", b"PK".to_vec(), "application/zip"),
            ],
            "File type '.zip' is not supported. Allowed types: .txt, .pdf, .doc, .docx, .xls, .xlsx, .csv, .jpg, .jpeg, .png, .gif, .webp, .mp4, .mov, .avi, .mp3, .wav, .html, .htm, .css, .js, .xml, .md, .ics, .vcf, .rtf, .tsv, .yaml, .yml, .py, .c",
        ),
        (
            vec![("big.txt", vec![b'x'; 51 * 1024 * 1024], "text/plain")],
            "File 'big.txt' exceeds maximum size of 50MB",
        ),
        (
            vec![
                ("a.txt", vec![b'x'; 30 * 1024 * 1024], "text/plain"),
                ("b.txt", vec![b'x'; 21 * 1024 * 1024], "text/plain"),
            ],
            "Total file size exceeds maximum of 50MB",
        ),
        (vec![], "No files provided"),
    ] {
        let (st, v) = upload(parts).await;
        assert_eq!((st, v), (400, json!({"error": msg})));
    }
    assert_eq!(
        on_disk(),
        objects,
        "no bytes of a rejected batch stay in the store"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM files").await,
        stored,
        "nothing stored by a rejected batch"
    );
    // JSON is not multipart.
    let (st, _) = call(
        widget(
            app.request(Method::POST, &format!("/api/chat/{sid}/upload/"), None),
            &key,
        )
        .json(&json!({})),
    )
    .await;
    assert_eq!(st, 415);
    // Attach: this session's file works (and is linked, its expiry cleared); another session's does not.
    let other = start(app, &key, bot).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = call(
        widget(
            app.request(Method::POST, &format!("/api/chat/{other}/message/"), None),
            &key,
        )
        .json(&json!({"message": "see file", "attachment_ids": [fid]})),
    )
    .await;
    assert_eq!(
        (st, v),
        (400, json!({"error": "One or more file IDs are invalid"}))
    );
    let (st, v) = call(
        widget(
            app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None),
            &key,
        )
        .json(&json!({"message": "see file", "attachment_ids": [fid, fid]})),
    )
    .await;
    assert_eq!(
        (st, v),
        (400, json!({"error": "One or more file IDs are invalid"})),
        "duplicates"
    );
    let (st, _) = call(
        widget(
            app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None),
            &key,
        )
        .json(&json!({"message": "see file", "attachment_ids": [fid]})),
    )
    .await;
    assert_eq!(st, 202);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM files WHERE id = {fid} AND expires_at IS NULL"
        ))
        .await,
        1
    );
    let detail = app
        .get_json(&format!("/api/sessions/{sid}/"), &team.key)
        .await;
    let user_msg = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"] == "see file")
        .unwrap()
        .clone();
    assert_eq!(user_msg["attachments"][0]["name"], "notes.txt");
    let r = app
        .get(&format!("/api/files/{fid}/content"), &team.key)
        .await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello");
});

both_backends!(cors_headers, async |app: &TestApp| {
    let r = app
        .client
        .request(Method::OPTIONS, app.url("/api/chat/start/"))
        .header("Origin", "https://anywhere.org")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, x-embed-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-session-token")
    );
    assert_eq!(r.headers()["access-control-max-age"], "86400");
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    // Real responses carry CORS too, even errors; other APIs do not.
    let r = app
        .client
        .post(app.url("/api/chat/start/"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = app.get_public("/api/experiments/").await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
});

both_backends!(
    a_tight_rate_limit_refuses_the_fourth_start,
    Options {
        chat_rate: api::ratelimit::Rate {
            limit: 3,
            window_secs: 3600,
        },
        ..Default::default()
    },
    async |tight: &TestApp| {
        // A tight limit: the fourth start from one embed key is refused.
        let team = tight.team("a").await;
        let bot = tight.echo_bot(&team).await;
        let (_, key) = tight
            .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
            .await;
        for i in 0..3 {
            let r = widget(tight.request(Method::POST, "/api/chat/start/", None), &key)
                .json(&json!({"chatbot_id": bot}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            assert_eq!(
                r.headers()["x-ratelimit-remaining"],
                (2 - i).to_string().as_str()
            );
        }
        let r = widget(tight.request(Method::POST, "/api/chat/start/", None), &key)
            .json(&json!({"chatbot_id": bot}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        assert!(r.headers().get("retry-after").is_some());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["detail"], "Rate limit exceeded.");
        assert!(v["available_in"].as_u64().is_some());
    }
);

both_backends!(streamed_replies, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let (_, key) = app
        .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
        .await;
    let sid = start(app, &key, bot).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = call(
        widget(
            app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None),
            &key,
        )
        .json(&json!({"message": "stream this reply"})),
    )
    .await;
    let task = v["task_id"].as_str().unwrap();
    let events = event_stream(widget(
        app.request(
            Method::GET,
            &format!("/api/chat/{sid}/{task}/stream/"),
            None,
        ),
        &key,
    ))
    .await;
    let events: Vec<(&str, Value)> = events
        .iter()
        .map(|e| {
            let mut lines = e.lines();
            let ev = lines.next().unwrap().strip_prefix("event: ").unwrap();
            let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
            (ev, serde_json::from_str(data).unwrap())
        })
        .collect();
    let (last_ev, last) = events.last().unwrap();
    assert_eq!(*last_ev, "complete");
    assert_eq!(last["message"]["content"], "You said: stream this reply");
    // Deltas, when the turn was caught running here, add up to the reply.
    let deltas: String = events
        .iter()
        .filter(|(e, _)| *e == "delta")
        .map(|(_, d)| d["content"].as_str().unwrap())
        .collect();
    assert!(
        deltas.is_empty() || deltas == "You said: stream this reply",
        "{deltas}"
    );
});
