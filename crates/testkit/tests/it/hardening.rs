//! What an attack on a running server found, each closed: read-only keys
//! and disabled channels writing through the chat API.

use chatstudio_testkit::{TestApp, both_backends};
use domain::channels::widget::AuthLevel;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

const ORIGIN: &str = "https://www.example.com";

use chatstudio_testkit::status_json as call;

fn upload_form() -> reqwest::multipart::Form {
    chatstudio_testkit::file_form("note.txt", b"hello".to_vec(), "text/plain")
}

both_backends!(
    a_read_only_key_cannot_write_through_the_chat_api,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (s, v) = app
            .post_json(
                "/api/chat/start/",
                &team.read_only_key,
                &json!({"chatbot_id": bot}),
            )
            .await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
        let (s, v) = app
            .post_json("/api/chat/start/", &team.key, &json!({"chatbot_id": bot}))
            .await;
        assert_eq!(s, 201, "{v}");
        let sid = v["session_id"].as_str().unwrap().to_string();
        let (s, v) = app
            .post_json(
                &format!("/api/chat/{sid}/message/"),
                &team.read_only_key,
                &json!({"message": "hi"}),
            )
            .await;
        assert_eq!(s, 403, "{v}");
        let (s, v) = call(
            app.request(
                Method::POST,
                &format!("/api/chat/{sid}/upload/"),
                Some(&team.read_only_key),
            )
            .multipart(upload_form()),
        )
        .await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, 0);
        // Reading stays open to it.
        let r = app
            .get(&format!("/api/chat/{sid}/poll/"), &team.read_only_key)
            .await;
        assert_eq!(r.status(), 200);
        let (s, _) = app
            .post_json(
                &format!("/api/chat/{sid}/message/"),
                &team.key,
                &json!({"message": "hi"}),
            )
            .await;
        assert_eq!(s, 202);
    }
);

both_backends!(
    a_disabled_widget_channel_stops_its_existing_sessions,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (ch, key) = app
            .widget(bot, &["*.example.com"], AuthLevel::EmbedKey)
            .await;
        let widget = |rb: RequestBuilder| rb.header("X-Embed-Key", &key).header("Origin", ORIGIN);
        let (s, v) = call(
            widget(app.request(Method::POST, "/api/chat/start/", None))
                .json(&json!({"chatbot_id": bot})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let sid = v["session_id"].as_str().unwrap().to_string();
        let message = |text: &str| {
            call(
                widget(app.request(Method::POST, &format!("/api/chat/{sid}/message/"), None))
                    .json(&json!({"message": text})),
            )
        };
        let d = &app.domain.db.write;
        domain::channels::widget::set_enabled(d, ch.id, false, Some("We are closed today".into()))
            .await
            .unwrap();
        let (s, v) = message("hello").await;
        assert_eq!((s, v), (403, json!({"error": "We are closed today"})));
        let (s, v) = call(
            widget(app.request(Method::POST, &format!("/api/chat/{sid}/upload/"), None))
                .multipart(upload_form()),
        )
        .await;
        assert_eq!((s, v), (403, json!({"error": "We are closed today"})));
        // A team key does not get around it either.
        let (s, _) = app
            .post_json(
                &format!("/api/chat/{sid}/message/"),
                &team.key,
                &json!({"message": "x"}),
            )
            .await;
        assert_eq!(s, 403);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, 0);
        // The session can still be read; a message-less disable answers the default text.
        let (s, _) = call(widget(app.request(
            Method::GET,
            &format!("/api/chat/{sid}/poll/"),
            None,
        )))
        .await;
        assert_eq!(s, 200);
        domain::channels::widget::set_enabled(d, ch.id, true, None)
            .await
            .unwrap();
        domain::channels::widget::set_enabled(d, ch.id, false, None)
            .await
            .unwrap();
        let (s, v) = message("hello").await;
        assert_eq!(
            (s, v),
            (
                403,
                json!({"error": "This chatbot is currently unavailable."})
            )
        );
        domain::channels::widget::set_enabled(d, ch.id, true, None)
            .await
            .unwrap();
        let (s, v) = message("hello").await;
        assert_eq!(s, 202, "{v}");
    }
);

both_backends!(
    nul_characters_are_a_400_naming_the_field_on_both_databases,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let refused = json!({"x": ["Null characters are not allowed."]});
        let named = |field: &str| {
            let mut v = refused.clone();
            v[field] = v["x"].take();
            v.as_object_mut().unwrap().remove("x");
            v
        };
        let nul = "a\u{0}b";
        let bodies = [
            (
                "/api/chat/start/",
                json!({"chatbot_id": bot, "participant_name": nul}),
                "participant_name",
            ),
            (
                "/api/sessions/",
                json!({"experiment": bot, "participant": nul}),
                "participant",
            ),
            (
                "/api/sessions/",
                json!({"experiment": bot, "messages": [{"role": "human", "content": nul}]}),
                "messages",
            ),
            (
                "/api/participants",
                json!({"identifier": "p1", "data": [{"experiment": bot, "data": {"note": nul}}]}),
                "data",
            ),
            (
                "/api/participants",
                json!({"identifier": "p1", "name": nul, "data": [{"experiment": bot}]}),
                "name",
            ),
            (
                &format!("/channels/api/{bot}/incoming_message"),
                json!({"message": nul}),
                "message",
            ),
            (
                &format!("/channels/api/{bot}/incoming_message"),
                json!({"message": "hi", "session": {"k\u{0}": 1}}),
                "session",
            ),
        ];
        for (path, body, field) in bodies {
            let (s, v) = app.post_json(path, &team.key, &body).await;
            assert_eq!((s, &v), (400, &named(field)), "{path} {body}");
        }
        for (path, field) in [
            ("/api/sessions/?tags=a%00b", "tags"),
            ("/api/participants?identifier=%00", "identifier"),
            ("/api/sessions/?platform=api%00", "platform"),
        ] {
            let r = app.get(path, &team.key).await;
            assert_eq!(r.status(), 400, "{path}");
            assert_eq!(r.json::<Value>().await.unwrap(), named(field), "{path}");
        }
        let r = app.get("/api/participants/a%00b/", &team.key).await;
        assert_eq!(r.status(), 400);
        // An upload's text fields and file names too, through the widget's own session.
        let (s, v) = app
            .post_json("/api/chat/start/", &team.key, &json!({"chatbot_id": bot}))
            .await;
        assert_eq!(s, 201, "{v}");
        let sid = v["session_id"].as_str().unwrap();
        let form = upload_form().text("participant_name", nul.to_string());
        let (s, v) = call(
            app.request(
                Method::POST,
                &format!("/api/chat/{sid}/upload/"),
                Some(&team.key),
            )
            .multipart(form),
        )
        .await;
        assert_eq!((s, v), (400, named("participant_name")));
        let form = chatstudio_testkit::file_form(nul, b"x".to_vec(), "text/plain");
        let (s, v) = call(
            app.request(
                Method::POST,
                &format!("/api/chat/{sid}/upload/"),
                Some(&team.key),
            )
            .multipart(form),
        )
        .await;
        // The multipart parser refuses a NUL in a part's headers itself.
        assert_eq!(s, 400, "{v}");
        // Nothing of the refused requests was stored.
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 1);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM participants").await, 1);
    }
);

/// The `url` of the chatbot in a start response sent with this Host.
async fn chatbot_url(
    app: &TestApp,
    team: &chatstudio_testkit::TestTeam,
    bot: uuid::Uuid,
    host: &str,
) -> String {
    let (s, v) = call(
        app.request(Method::POST, "/api/chat/start/", Some(&team.key))
            .header("Host", host)
            .json(&json!({"chatbot_id": bot})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["chatbot"]["url"].as_str().unwrap().to_string()
}

both_backends!(
    absolute_urls_never_echo_a_forged_host,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let good = chatbot_url(app, &team, bot, "chat.example.org:8000").await;
        assert_eq!(
            good,
            format!("http://chat.example.org:8000/api/experiments/{bot}/")
        );
        for forged in ["evil.com/phish?", "evil.com@x", "a b"] {
            let url = chatbot_url(app, &team, bot, forged).await;
            assert!(url.starts_with("http://localhost/api/"), "{forged}: {url}");
        }
    }
);

#[tokio::test]
async fn a_public_url_is_used_for_every_absolute_url() {
    let o = chatstudio_testkit::Options {
        public_url: Some("https://chat.example.org/".into()),
        ..Default::default()
    };
    let app = TestApp::start_with(chatstudio_testkit::Backend::Sqlite, o)
        .await
        .unwrap();
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let url = chatbot_url(&app, &team, bot, "evil.com").await;
    assert_eq!(
        url,
        format!("https://chat.example.org/api/experiments/{bot}/")
    );
    let list = app.get_json("/api/sessions/", &team.key).await;
    let s = list["results"][0]["url"].as_str().unwrap();
    assert!(
        s.starts_with("https://chat.example.org/api/sessions/"),
        "{s}"
    );
    app.finish().await;
}

both_backends!(
    signing_keys_and_provider_headers_are_sealed,
    async |app: &TestApp| {
        let d = &app.domain;
        // Signing keys: sealed in the database; a value stored in the clear is sealed on first read.
        let keys = app
            .rows(
                "SELECT value FROM settings WHERE key IN ('cursor_key', 'session_token_key')",
                &["v"],
            )
            .await;
        assert_eq!(keys.len(), 2);
        for k in &keys {
            assert!(k["v"].as_str().unwrap().starts_with("v1:"), "{k}");
        }
        {
            use sea_orm::{ActiveModelTrait, Set};
            store::entity::setting::ActiveModel {
                key: Set("legacy_key".into()),
                value: Set("00ff".repeat(16)),
            }
            .insert(&d.db.write)
            .await
            .unwrap();
        }
        let got = domain::bootstrap::instance_secret(&d.db, &d.secrets, "legacy_key")
            .await
            .unwrap();
        assert_eq!(got, [0x00, 0xff].repeat(16));
        let again = domain::bootstrap::instance_secret(&d.db, &d.secrets, "legacy_key")
            .await
            .unwrap();
        assert_eq!(again, got);
        let row = app
            .rows(
                "SELECT value FROM settings WHERE key = 'legacy_key'",
                &["v"],
            )
            .await;
        assert!(row[0]["v"].as_str().unwrap().starts_with("v1:"));

        // Provider headers (a gateway's credential) are sealed like the key.
        let team = app.team("a").await;
        domain::providers::add(
            &d.db.write,
            &d.secrets,
            team.id,
            domain::providers::NewProvider {
                name: "gw".into(),
                kind: "openai".into(),
                base_url: Some("http://127.0.0.1:9".into()),
                api_key: None,
                headers: vec![("X-Gateway-Key".into(), "gw-secret-1".into())],
                timeout_secs: None,
            },
        )
        .await
        .unwrap();
        let stored = app
            .rows("SELECT CAST(headers AS TEXT) AS h FROM providers", &["h"])
            .await;
        let h = stored[0]["h"].as_str().unwrap();
        assert!(
            h.contains("X-Gateway-Key") && !h.contains("gw-secret-1"),
            "{h}"
        );
        let access = domain::providers::access(&d.db.read, &d.secrets, team.id, "gw")
            .await
            .unwrap();
        assert_eq!(
            access.headers,
            [("X-Gateway-Key".to_string(), "gw-secret-1".to_string())]
        );
    }
);

#[cfg(unix)]
#[tokio::test]
async fn a_fresh_data_dir_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh").join("data");
    let db = store::connect(&store::DbConfig {
        url: None,
        data_dir: dir.clone(),
        max_connections: 2,
    })
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("chatstudio.sqlite3")), 0o600);
    assert_eq!(mode(&dir.join("chatstudio.sqlite3-wal")), 0o600);
    db.close().await;
}

/// Refused credentials fill the client's own bucket: past it, the client is
/// refused before any credential is looked at, whatever session it names.
#[tokio::test]
async fn refused_credentials_count_in_their_own_bucket() {
    let o = chatstudio_testkit::Options {
        chat_rate: api::ratelimit::Rate {
            limit: 5,
            window_secs: 300,
        },
        ..Default::default()
    };
    let app = TestApp::start_with(chatstudio_testkit::Backend::Sqlite, o)
        .await
        .unwrap();
    let poll = async |sid: uuid::Uuid| {
        let r = app
            .request(Method::GET, &format!("/api/chat/{sid}/poll/"), None)
            .header("X-Session-Token", "forged")
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    };
    for _ in 0..5 {
        assert_eq!(poll(uuid::Uuid::new_v4()).await, 403);
    }
    // Each try named a new session (a new session bucket): the credentials bucket stops it.
    assert_eq!(poll(uuid::Uuid::new_v4()).await, 429);
    app.finish().await;
}

/// An app whose HTTP server has short timeouts and room for `max` connections.
async fn strict_server(max: usize) -> TestApp {
    let o = chatstudio_testkit::Options {
        http: server::http::Limits {
            header_timeout: std::time::Duration::from_secs(1),
            body_timeout: std::time::Duration::from_secs(1),
            max_connections: max,
        },
        ..Default::default()
    };
    TestApp::start_with(chatstudio_testkit::Backend::Sqlite, o)
        .await
        .unwrap()
}

/// Reads until the server closes the connection; what it sent, or `None`
/// when it was still open after `within`.
async fn closed_within(
    s: &mut tokio::net::TcpStream,
    within: std::time::Duration,
) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let app = strict_server(100).await;
    let within = std::time::Duration::from_secs(4);
    // An idle connection, and one with half its headers, are closed.
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut idle, within).await.is_some(),
        "idle stayed open"
    );
    assert!(
        closed_within(&mut half, within).await.is_some(),
        "half-sent headers stayed open"
    );

    // A body drip-fed a byte at a time falls behind the minimum rate and fails.
    let body = "{\"message\": \"drip, drip, drip\"}";
    let mut drip = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/chat/start/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    drip.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = None;
    for b in body.bytes() {
        if drip.write_all(&[b]).await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if started.elapsed() > std::time::Duration::from_secs(3) {
            answer = closed_within(&mut drip, within).await;
            break;
        }
    }
    let answer = match answer {
        Some(a) => a,
        None => closed_within(&mut drip, within).await.unwrap_or_default(),
    };
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(8));

    // A kept-alive connection is closed once idle past the header timeout too.
    let mut kept = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = closed_within(&mut kept, within)
        .await
        .expect("closed after the answer");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    app.finish().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    use tokio::io::AsyncWriteExt;
    let app = strict_server(2).await;
    let a = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let b = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // The third is accepted by the kernel but not served while two are open…
    let mut c = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        closed_within(&mut c, std::time::Duration::from_millis(300)).await,
        None,
        "served past the cap"
    );
    // …and is once one of them goes.
    drop(a);
    let got = closed_within(&mut c, std::time::Duration::from_secs(3))
        .await
        .expect("served once a slot is free");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    drop(b);
    app.finish().await;
}

both_backends!(
    uploads_sniff_content_and_store_any_name,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (s, v) = app
            .post_json("/api/chat/start/", &team.key, &json!({"chatbot_id": bot}))
            .await;
        assert_eq!(s, 201, "{v}");
        let sid = v["session_id"].as_str().unwrap().to_string();
        let upload = |name: String, bytes: &'static [u8], claimed: &str| {
            let form = chatstudio_testkit::file_form(&name, bytes.to_vec(), claimed);
            call(
                app.request(
                    Method::POST,
                    &format!("/api/chat/{sid}/upload/"),
                    Some(&team.key),
                )
                .multipart(form),
            )
        };
        let refusals: [(&str, &'static [u8], &str, &str); 2] = [
            // Markup behind a comment is still an SVG, whatever the name and claim.
            (
                "cat.png",
                b"<!-- x --><svg onload=alert(1)></svg>",
                "image/png",
                "not a supported image type",
            ),
            // A text claim does not carry a binary past the extension list.
            (
                "evil.exe",
                b"MZ\x90\x00\x03\x00\x00\x00",
                "text/plain",
                "File type '.exe' is not supported",
            ),
        ];
        for (name, bytes, claimed, says) in refusals {
            let (s, v) = upload(name.into(), bytes, claimed).await;
            assert_eq!(s, 400, "{v}");
            assert!(v["error"].as_str().unwrap().contains(says), "{v}");
        }
        // Text that is text still passes under a text claim (the original's rule).
        let (s, v) = upload("server.log".into(), b"all quiet", "text/plain").await;
        assert_eq!(s, 201, "{v}");
        // Any name the checks accept is stored: a long one is kept, shortened for display.
        let long = format!("{}.txt", "n".repeat(300));
        let (s, v) = upload(long, b"long name", "text/plain").await;
        assert_eq!(s, 201, "{v}");
        let name = v["files"][0]["name"].as_str().unwrap();
        assert_eq!(name.chars().count(), 255);
        assert!(name.ends_with("….txt"), "{name}");
        let id = v["files"][0]["id"].as_i64().unwrap();
        let r = app
            .get(&format!("/api/files/{id}/content"), &team.key)
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"long name");
        // Objects live under generated keys: no directory per file, none left empty.
        let team_dir = app
            .data_dir
            .path()
            .join("files")
            .join(team.id.0.to_string());
        for entry in std::fs::read_dir(&team_dir).unwrap() {
            let entry = entry.unwrap();
            assert!(entry.file_type().unwrap().is_file(), "{:?}", entry.path());
        }
    }
);

/// Starts a widget-style session with a team key and uploads `kib` KiB to it.
async fn upload_kib(app: &TestApp, key: &str, sid: &str, kib: usize) -> (u16, Value) {
    let form = chatstudio_testkit::file_form("data.txt", vec![b'a'; kib * 1024], "text/plain");
    call(
        app.request(Method::POST, &format!("/api/chat/{sid}/upload/"), Some(key))
            .multipart(form),
    )
    .await
}

async fn quota_app(channel_mib: u64, client_mib: u64) -> TestApp {
    let rate = |limit| api::ratelimit::Rate {
        limit,
        window_secs: 3600,
    };
    let o = chatstudio_testkit::Options {
        upload_quota: (rate(channel_mib), rate(client_mib)),
        ..Default::default()
    };
    TestApp::start_with(chatstudio_testkit::Backend::Sqlite, o)
        .await
        .unwrap()
}

#[tokio::test]
async fn uploads_stop_at_the_channel_and_client_quotas() {
    for (channel, client) in [(1, 100), (100, 1)] {
        let app = quota_app(channel, client).await;
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let mut sids = Vec::new();
        for _ in 0..2 {
            let (s, v) = app
                .post_json("/api/chat/start/", &team.key, &json!({"chatbot_id": bot}))
                .await;
            assert_eq!(s, 201, "{v}");
            sids.push(v["session_id"].as_str().unwrap().to_string());
        }
        assert_eq!(upload_kib(&app, &team.key, &sids[0], 600).await.0, 201);
        assert_eq!(upload_kib(&app, &team.key, &sids[0], 600).await.0, 201);
        // Past 1 MiB a fresh session of the same channel and client is refused too.
        let (s, v) = upload_kib(&app, &team.key, &sids[1], 10).await;
        assert_eq!(s, 429, "{channel}/{client}: {v}");
        assert_eq!(v["detail"], "Upload quota exceeded.");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, 2);
        app.finish().await;
    }
}

both_backends!(expired_uploads_free_their_bytes, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let (s, v) = app
        .post_json("/api/chat/start/", &team.key, &json!({"chatbot_id": bot}))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["session_id"].as_str().unwrap().to_string();
    assert_eq!(upload_kib(app, &team.key, &sid, 4).await.0, 201);
    assert_eq!(upload_kib(app, &team.key, &sid, 4).await.0, 201);
    let team_dir = app
        .data_dir
        .path()
        .join("files")
        .join(team.id.0.to_string());
    let objects = || std::fs::read_dir(&team_dir).unwrap().count();
    assert_eq!(objects(), 2);
    // Nothing has expired yet: the sweep leaves both.
    assert_eq!(
        domain::files::uploads::expire_uploads(&app.domain)
            .await
            .unwrap(),
        0
    );
    {
        use sea_orm::ConnectionTrait;
        let db = &app.domain.db.write;
        let past = match app.backend {
            chatstudio_testkit::Backend::Sqlite => "'2000-01-01 00:00:00+00:00'",
            chatstudio_testkit::Backend::Postgres => "TIMESTAMPTZ '2000-01-01 00:00:00+00'",
        };
        db.execute_unprepared(&format!(
            "UPDATE files SET expires_at = {past} WHERE id = (SELECT MIN(id) FROM files)"
        ))
        .await
        .unwrap();
    }
    assert_eq!(
        domain::files::uploads::expire_uploads(&app.domain)
            .await
            .unwrap(),
        1
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, 1);
    assert_eq!(objects(), 1, "the expired upload's bytes are gone");
});
