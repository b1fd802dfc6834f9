//! The console over HTTP as a browser uses it: sign-in and out, cookies,
//! CSRF, the sign-in rate limit, every page and action under each role
//! (allowed, or refused with nothing changed), and another team's objects.

use chatstudio_testkit::console::PASSWORD;
use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use domain::teams::Role;
use sea_orm::ConnectionTrait;
use serde_json::json;

const BOT_FILE: &str = "name: Helper\ndescription: Answers questions\nconfig:\n  pipeline:\n    nodes:\n      - {id: start, type: start}\n      - {id: llm, type: llm, params: {provider: local, model: echo, prompt: Be brief.}}\n      - {id: end, type: end}\n    edges:\n      - {from: start, to: llm}\n      - {from: llm, to: end}\n";

/// A team with an echo bot and one answered API session; the session's id.
async fn team_with_session(app: &TestApp, slug: &str) -> (TestTeam, uuid::Uuid, String) {
    let team = app.team(slug).await;
    let bot = app.echo_bot(&team).await;
    let (s, body) = app.api_message(&team, bot, "Hello there").await;
    assert_eq!(s, 200, "{body}");
    let session = app
        .rows(
            &format!(
                "SELECT external_id FROM sessions WHERE team_id = {}",
                team.id.0
            ),
            &["external_id"],
        )
        .await[0]["external_id"]
        .as_str()
        .unwrap()
        .to_string();
    (team, bot, session)
}

async fn chatbots_named(app: &TestApp, name: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM chatbots WHERE name = '{name}'"
    ))
    .await
}

async fn status_of(app: &TestApp, session: &str) -> String {
    app.rows(
        &format!("SELECT status FROM sessions WHERE external_id = '{session}'"),
        &["status"],
    )
    .await[0]["status"]
        .as_str()
        .unwrap()
        .to_string()
}

both_backends!(signing_in_and_out, async |app: &TestApp| {
    let team = app.team("acme").await;
    app.member(&team, "Ada@Acme.org", Role::ChatViewer).await;
    let c = app.console();

    let home = c.get("/").await;
    assert_eq!((home.status, home.location()), (303, "/login/"));
    let page = c.get("/a/acme/sessions/?tag=x").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/login/?next=/a/acme/sessions/%3Ftag%3Dx");

    let form = c.get("/login/").await;
    assert_eq!(form.status, 200);
    let csrf = form.set_cookie("csrftoken").expect("a CSRF cookie");
    assert!(
        !csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"),
        "{csrf}"
    );
    assert!(form.body.contains(&format!("value=\"{}\"", c.csrf())));
    assert!(form.body.contains("<label for=\"email\">"));

    let wrong = c
        .submit(
            "/login/",
            &[("email", "ada@acme.org"), ("password", "nope nope")],
        )
        .await;
    assert_eq!(wrong.status, 200);
    assert!(
        wrong
            .body
            .contains("Please enter a correct email and password.")
    );
    assert!(wrong.set_cookie("sessionid").is_none());
    let unknown = c
        .submit(
            "/login/",
            &[("email", "who@acme.org"), ("password", PASSWORD)],
        )
        .await;
    assert!(
        unknown
            .body
            .contains("Please enter a correct email and password.")
    );

    // The email in any case; back to where the visitor was going.
    let ok = c
        .submit(
            "/login/",
            &[
                ("email", "ADA@acme.org"),
                ("password", PASSWORD),
                ("next", "/a/acme/sessions/"),
            ],
        )
        .await;
    assert_eq!((ok.status, ok.location()), (303, "/a/acme/sessions/"));
    let sid = ok.set_cookie("sessionid").unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(sid.contains(flag), "{flag} in {sid}");
    }
    assert!(!sid.contains("Secure"), "plain http: {sid}");
    let token = c.cookie("sessionid").unwrap();
    assert_eq!(app.scalar("SELECT COUNT(*) FROM console_sessions").await, 1);
    let stored = app
        .rows("SELECT token_hash FROM console_sessions", &["token_hash"])
        .await;
    assert_ne!(
        stored[0]["token_hash"],
        json!(token),
        "only a hash is stored"
    );

    let home = c.get("/").await;
    assert_eq!((home.status, home.location()), (303, "/a/acme/chatbots/"));
    let list = c.get("/a/acme/chatbots/").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("Ada@Acme.org") && list.body.contains("Chat viewer"));

    // An off-site `next` goes home instead.
    let c2 = app.console();
    let p = c2.sign_in("ada@acme.org", PASSWORD).await;
    assert_eq!(p.location(), "/");
    let p = c2
        .submit(
            "/login/",
            &[
                ("email", "ada@acme.org"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(p.location(), "/");

    // Sign-out needs the token; then the cookie is dead.
    let refused = c.post("/logout/", &[]).await;
    assert_eq!(refused.status, 403);
    let out = c.submit("/logout/", &[]).await;
    assert_eq!((out.status, out.location()), (303, "/login/"));
    assert!(out.set_cookie("sessionid").unwrap().contains("Max-Age=0"));
    c.set("sessionid", &token);
    assert_eq!(c.get("/a/acme/chatbots/").await.status, 303);
});

both_backends!(cookies_are_secure_behind_https, async |app: &TestApp| {
    let team = app.team("acme").await;
    app.member(&team, "ada@acme.org", Role::Owner).await;
    let c = app.console();
    c.get("/login/").await;
    let token = c.csrf();
    let p = c
        .send(
            c.request(reqwest::Method::POST, "/login/")
                .header("x-forwarded-proto", "https")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "email=ada%40acme.org&password=correct+horse+battery&csrfmiddlewaretoken={token}"
                )),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.set_cookie("sessionid").unwrap().contains("; Secure"));
    assert!(p.set_cookie("csrftoken").unwrap().contains("; Secure"));
});

both_backends!(
    sign_in_needs_its_token_and_is_rate_limited,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        app.member(&team, "ada@acme.org", Role::Owner).await;
        let c = app.console();
        // No token cookie, or a token that does not match it: refused, nothing opened.
        let p = c
            .post(
                "/login/",
                &[("email", "ada@acme.org"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(p.status, 403);
        c.get("/login/").await;
        let p = c
            .post(
                "/login/",
                &[
                    ("email", "ada@acme.org"),
                    ("password", PASSWORD),
                    ("csrfmiddlewaretoken", "forged"),
                ],
            )
            .await;
        assert_eq!(p.status, 403);
        assert!(p.body.contains("CSRF"));
        assert_eq!(app.scalar("SELECT COUNT(*) FROM console_sessions").await, 0);

        for _ in 0..10 {
            let p = c
                .submit(
                    "/login/",
                    &[("email", "ada@acme.org"), ("password", "guess guess")],
                )
                .await;
            assert_eq!(p.status, 200);
        }
        // Even the right password waits now.
        let p = c
            .submit(
                "/login/",
                &[("email", "ada@acme.org"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(p.status, 429, "{}", p.body);
        assert!(p.headers.contains_key("retry-after"));
        assert!(p.body.contains("Too many failed sign-ins"));
        assert_eq!(app.scalar("SELECT COUNT(*) FROM console_sessions").await, 0);
    }
);

both_backends!(
    an_expired_or_deactivated_sign_in_is_signed_out,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let c = app.signed_in(&team, Role::Owner).await;
        assert_eq!(c.get("/a/acme/chatbots/").await.status, 200);
        app.domain
            .db
            .write
            .execute_unprepared("UPDATE console_sessions SET expires_at = created_at")
            .await
            .unwrap();
        let p = c.get("/a/acme/chatbots/").await;
        assert_eq!(
            (p.status, p.location()),
            (303, "/login/?next=/a/acme/chatbots/")
        );

        let c = app.signed_in(&team, Role::ChatViewer).await;
        assert_eq!(c.get("/a/acme/chatbots/").await.status, 200);
        // A new password ends the person's sign-ins.
        domain::users::set_password(
            &app.domain.db.write,
            "chat_viewer@acme.example.org",
            &domain::users::Password::new("another long password"),
        )
        .await
        .unwrap();
        assert_eq!(c.get("/a/acme/chatbots/").await.status, 303);
    }
);

both_backends!(
    a_chat_viewer_reads_and_changes_nothing,
    async |app: &TestApp| {
        let (team, bot, session) = team_with_session(app, "acme").await;
        let c = app.signed_in(&team, Role::ChatViewer).await;
        for path in [
            "/a/acme/chatbots/".to_string(),
            format!("/a/acme/chatbots/{bot}/"),
            "/a/acme/sessions/".to_string(),
            format!("/a/acme/sessions/{session}/"),
        ] {
            let p = c.get(&path).await;
            assert_eq!(p.status, 200, "{path}: {}", p.body);
            assert!(
                !p.body.contains("csrfmiddlewaretoken\" value=\"\""),
                "{path}"
            );
        }
        let list = c.get("/a/acme/chatbots/").await;
        assert!(
            !list.body.contains("New chatbot from a file"),
            "no editing form"
        );
        let transcript = c.get(&format!("/a/acme/sessions/{session}/")).await;
        assert!(!transcript.body.contains("End this session"));

        let p = c.get("/a/acme/team/").await;
        assert_eq!(p.status, 403);
        assert!(p.body.contains("does not allow"));
        let p = c
            .submit("/a/acme/chatbots/new/", &[("yaml", BOT_FILE)])
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(chatbots_named(app, "Helper").await, 0);
        let versions = app.scalar("SELECT COUNT(*) FROM chatbots").await;
        let p = c
            .submit(
                &format!("/a/acme/chatbots/{bot}/versions/"),
                &[("publish", "on")],
            )
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM chatbots").await, versions);
        let p = c
            .submit(&format!("/a/acme/sessions/{session}/end/"), &[])
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(status_of(app, &session).await, "active");
    }
);

both_backends!(
    a_chatbot_admin_builds_publishes_and_ends,
    async |app: &TestApp| {
        let (team, _bot, session) = team_with_session(app, "acme").await;
        let c = app.signed_in(&team, Role::ChatbotAdmin).await;
        assert_eq!(c.get("/a/acme/team/").await.status, 403);

        // A file the platform refuses: the form again, with the reason and the text kept.
        let bad = "name: Helper\nconfig:\n  pipeline:\n    nodes: [{id: x, type: warp_drive}]\n";
        let p = c.submit("/a/acme/chatbots/new/", &[("yaml", bad)]).await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains("warp_drive"), "{}", p.body);
        assert!(p.body.contains("type: warp_drive"), "the text is kept");
        let p = c
            .submit("/a/acme/chatbots/new/", &[("yaml", "name: [")])
            .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("invalid chatbot file"));
        assert_eq!(chatbots_named(app, "Helper").await, 0);

        let p = c
            .submit("/a/acme/chatbots/new/", &[("yaml", BOT_FILE)])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let path = p.location().to_string();
        assert!(path.starts_with("/a/acme/chatbots/"), "{path}");
        let page = c.get(&path).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Helper") && page.body.contains("No versions yet"));
        assert!(page.body.contains("model: echo"), "configuration as YAML");

        let p = c
            .submit(
                &format!("{path}versions/"),
                &[("description", "First cut"), ("publish", "on")],
            )
            .await;
        assert_eq!((p.status, p.location()), (303, path.as_str()));
        let page = c.get(&path).await;
        assert!(page.body.contains("First cut") && page.body.contains("published"));
        let id = path.trim_end_matches('/').rsplit('/').next().unwrap();
        let api = app
            .get_json(&format!("/api/experiments/{id}/"), &team.key)
            .await;
        assert_eq!(
            api["versions"],
            json!([{"is_default_version": true, "name": "Helper", "version_description": "First cut", "version_number": 1}]),
            "{api}"
        );

        let p = c
            .submit(&format!("/a/acme/sessions/{session}/end/"), &[])
            .await;
        assert_eq!(p.status, 303);
        let rows = app
            .rows(
                &format!("SELECT status, ended_by FROM sessions WHERE external_id = '{session}'"),
                &["status", "ended_by"],
            )
            .await;
        assert_eq!(rows[0]["status"], json!("pending-review"));
        assert_eq!(rows[0]["ended_by"], json!("admin"));
        let transcript = c.get(&format!("/a/acme/sessions/{session}/")).await;
        assert!(!transcript.body.contains("End this session"));
    }
);

both_backends!(
    a_team_admin_sees_members_and_keys_only,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        app.member(&team, "viewer@acme.org", Role::ChatViewer).await;
        let c = app.signed_in(&team, Role::TeamAdmin).await;
        let p = c.get("/a/acme/team/").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("viewer@acme.org") && p.body.contains("Chat viewer"));
        assert!(p.body.contains("owner@acme.chatstudio.local") && p.body.contains("no password"));
        let prefix = team.key.split('.').next().unwrap();
        assert!(p.body.contains(prefix), "key prefixes listed");
        assert!(!p.body.contains(&team.key), "never the key");
        let p = c
            .submit("/a/acme/chatbots/new/", &[("yaml", BOT_FILE)])
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(chatbots_named(app, "Helper").await, 0);
    }
);

both_backends!(
    every_form_needs_the_sign_ins_token,
    async |app: &TestApp| {
        let (team, bot, session) = team_with_session(app, "acme").await;
        let c = app.signed_in(&team, Role::Owner).await;
        let other = app.signed_in(&team, Role::ChatbotAdmin).await;
        for forged in ["", "forged", other.csrf().as_str()] {
            let p = c
                .post(
                    "/a/acme/chatbots/new/",
                    &[("yaml", BOT_FILE), ("csrfmiddlewaretoken", forged)],
                )
                .await;
            assert_eq!(p.status, 403, "{forged:?}");
            let p = c
                .post(
                    &format!("/a/acme/chatbots/{bot}/versions/"),
                    &[("csrfmiddlewaretoken", forged)],
                )
                .await;
            assert_eq!(p.status, 403);
            let p = c
                .post(
                    &format!("/a/acme/sessions/{session}/end/"),
                    &[("csrfmiddlewaretoken", forged)],
                )
                .await;
            assert_eq!(p.status, 403);
            assert!(p.body.contains("CSRF"));
        }
        assert_eq!(chatbots_named(app, "Helper").await, 0);
        assert_eq!(status_of(app, &session).await, "active");
    }
);

both_backends!(
    another_teams_objects_are_not_found,
    async |app: &TestApp| {
        let (_, _, _) = team_with_session(app, "acme").await;
        let (_, their_bot, their_session) = team_with_session(app, "rival").await;
        let acme = domain::teams::by_slug(&app.domain, "acme").await.unwrap();
        let acme = TestTeam {
            id: acme.id,
            slug: acme.slug,
            owner_id: 0,
            key: String::new(),
            read_only_key: String::new(),
        };
        let c = app.signed_in(&acme, Role::Owner).await;
        for path in [
            "/a/rival/chatbots/".to_string(),
            "/a/nobody/chatbots/".to_string(),
            format!("/a/acme/chatbots/{their_bot}/"),
            format!("/a/acme/sessions/{their_session}/"),
            "/a/acme/chatbots/not-a-uuid/".to_string(),
        ] {
            assert_eq!(c.get(&path).await.status, 404, "{path}");
        }
        let p = c
            .submit(&format!("/a/acme/sessions/{their_session}/end/"), &[])
            .await;
        assert_eq!(p.status, 404);
        let p = c
            .submit(&format!("/a/rival/sessions/{their_session}/end/"), &[])
            .await;
        assert_eq!(p.status, 404);
        assert_eq!(status_of(app, &their_session).await, "active");
    }
);

both_backends!(
    the_transcript_shows_each_turns_trace_and_cost,
    async |app: &TestApp| {
        let (team, bot, session) = team_with_session(app, "acme").await;
        let c = app.signed_in(&team, Role::ChatViewer).await;
        let list = c.get(&format!("/a/acme/sessions/?chatbot={bot}")).await;
        assert_eq!(list.status, 200);
        assert!(list.body.contains(&session[..8]), "{}", list.body);
        let none = c.get("/a/acme/sessions/?tag=nothing-has-this").await;
        assert!(none.body.contains("No sessions match"));
        assert_eq!(c.get("/a/acme/sessions/?chatbot=zzz").await.status, 400);

        let p = c.get(&format!("/a/acme/sessions/{session}/")).await;
        assert_eq!(p.status, 200);
        for expected in [
            "Hello there",
            "You said: Hello there",
            "<td>llm</td>",
            "Cost by model",
            "echo",
            "success",
            "$0.00000000",
        ] {
            assert!(p.body.contains(expected), "{expected} in {}", p.body);
        }
        // Participant text is escaped.
        app.api_message(&team, bot, "<script>alert(1)</script>")
            .await;
        let p = c.get(&format!("/a/acme/sessions/{session}/")).await;
        assert!(!p.body.contains("<script>alert(1)</script>"));
        assert!(p.body.contains("&lt;script&gt;"));
    }
);

both_backends!(the_api_takes_the_console_cookie, async |app: &TestApp| {
    let (team, bot, session) = team_with_session(app, "acme").await;
    let c = app.signed_in(&team, Role::ChatbotAdmin).await;
    let p = c.get("/api/experiments/").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains(&bot.to_string()));

    let end = format!("/api/sessions/{session}/end_experiment_session/");
    let p = c.send(c.request(reqwest::Method::POST, &end)).await;
    assert_eq!(p.status, 403);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&p.body).unwrap(),
        json!({"detail": "CSRF Failed: CSRF token missing or incorrect."})
    );
    assert_eq!(status_of(app, &session).await, "active");
    let p = c
        .send(
            c.request(reqwest::Method::POST, &end)
                .header("X-CSRFToken", c.csrf()),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(status_of(app, &session).await, "pending-review");

    // A chat viewer's cookie only reads.
    let viewer = app.signed_in(&team, Role::ChatViewer).await;
    assert_eq!(viewer.get("/api/sessions/").await.status, 200);
    let p = viewer
        .send(
            viewer
                .request(reqwest::Method::POST, "/api/sessions/")
                .header("X-CSRFToken", viewer.csrf())
                .header("content-type", "application/json")
                .body(json!({"experiment": bot}).to_string()),
        )
        .await;
    assert_eq!(p.status, 403, "{}", p.body);

    // A dead cookie is no caller at all.
    let stranger = app.console();
    stranger.set("sessionid", "not-a-sign-in");
    assert_eq!(stranger.get("/api/experiments/").await.status, 401);
});

both_backends!(
    csv_export_of_the_filtered_sessions,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let bot = app.echo_bot(&team).await;
        let other = app.llm_chatbot(&team, "local", "echo", "", json!({})).await;
        app.api_message(&team, bot, "=1+1, said \"Ada\"\nnext line")
            .await;
        app.api_message(&team, other, "not exported").await;
        let (_, _, rival_session) = team_with_session(app, "rival").await;
        let c = app.signed_in(&team, Role::ChatViewer).await;

        let list = c.get(&format!("/a/acme/sessions/?chatbot={bot}")).await;
        assert!(
            list.body
                .contains(&format!("export.csv?chatbot={bot}&amp;tag=")),
            "{}",
            list.body
        );
        let p = c
            .get(&format!("/a/acme/sessions/export.csv?chatbot={bot}&tag="))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.headers["content-type"], "text/csv; charset=utf-8");
        assert!(
            p.headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains("attachment")
        );
        let lines: Vec<&str> = p.body.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines[0],
            "session_id,chatbot,participant,channel,session_status,session_tags,message_at,role,content,message_tags"
        );
        assert_eq!(lines.len(), 3, "{}", p.body);
        assert!(lines[1].contains(",api,active,,"), "{}", lines[1]);
        assert!(
            lines[1].ends_with(",human,\"'=1+1, said \"\"Ada\"\"\nnext line\","),
            "quoted and defused: {}",
            lines[1]
        );
        assert!(lines[2].contains(",ai,\"You said: =1+1"), "{}", lines[2]);
        assert!(!p.body.contains("not exported") && !p.body.contains(&rival_session));

        // Everything of the team, and nothing of another team.
        let all = c.get("/a/acme/sessions/export.csv").await;
        assert_eq!(all.body.split("\r\n").filter(|l| !l.is_empty()).count(), 5);
        assert!(!all.body.contains(&rival_session));
        assert_eq!(c.get("/a/rival/sessions/export.csv").await.status, 404);
        assert_eq!(
            c.get("/a/acme/sessions/export.csv?chatbot=zzz")
                .await
                .status,
            400
        );
        assert_eq!(
            app.console()
                .get("/a/acme/sessions/export.csv")
                .await
                .status,
            303
        );
    }
);

both_backends!(trying_a_chatbot_in_the_console, async |app: &TestApp| {
    let team = app.team("acme").await;
    let bot = app.echo_bot(&team).await;
    let viewer = app.signed_in(&team, Role::ChatViewer).await;
    assert_eq!(
        viewer
            .get(&format!("/a/acme/chatbots/{bot}/try/"))
            .await
            .status,
        403
    );
    let start = |c: &chatstudio_testkit::console::ConsoleClient, csrf: Option<String>| {
        let mut rb = c
            .request(reqwest::Method::POST, "/api/chat/start/")
            .header("content-type", "application/json")
            .body(json!({"chatbot_id": bot}).to_string());
        if let Some(t) = csrf {
            rb = rb.header("X-CSRFToken", t);
        }
        rb
    };
    let p = viewer.send(start(&viewer, Some(viewer.csrf()))).await;
    assert_eq!(
        p.status, 403,
        "a chat viewer cannot start sessions: {}",
        p.body
    );

    let c = app.signed_in(&team, Role::ChatbotAdmin).await;
    let page = c.get(&format!("/a/acme/chatbots/{bot}/try/")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("/static/try.js")
            && page.body.contains(&format!("data-chatbot=\"{bot}\""))
    );
    let js = c.get("/static/try.js").await;
    assert_eq!(js.status, 200);
    assert!(
        js.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(c.get("/static/nothing.js").await.status, 404);

    // The chat API takes the cookie: CSRF on the unsafe calls.
    assert_eq!(c.send(start(&c, None)).await.status, 403);
    let p = c.send(start(&c, Some(c.csrf()))).await;
    assert_eq!(p.status, 201, "{}", p.body);
    let started: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    let sid = started["session_id"].as_str().unwrap().to_string();
    assert_eq!(
        started["participant"]["identifier"],
        json!("chatbot_admin@acme.example.org")
    );
    let send = c
        .request(reqwest::Method::POST, &format!("/api/chat/{sid}/message/"))
        .header("content-type", "application/json")
        .body(json!({"message": "hi"}).to_string());
    assert_eq!(c.send(send).await.status, 403, "no CSRF token");
    let send = c
        .request(reqwest::Method::POST, &format!("/api/chat/{sid}/message/"))
        .header("content-type", "application/json")
        .header("X-CSRFToken", c.csrf())
        .body(json!({"message": "hi"}).to_string());
    let p = c.send(send).await;
    assert_eq!(p.status, 202, "{}", p.body);
    let task: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    let task = task["task_id"].as_str().unwrap();
    let stream = c.get(&format!("/api/chat/{sid}/{task}/stream/")).await;
    assert_eq!(stream.status, 200);
    assert!(
        stream.body.contains("event: complete") && stream.body.contains("You said: hi"),
        "{}",
        stream.body
    );
    let traces = c.get(&format!("/api/sessions/{sid}/traces/")).await;
    assert_eq!(traces.status, 200);
    assert!(traces.body.contains("\"path\""));

    // Another team's member cannot use the session.
    let rival = app.team("rival").await;
    let stranger = app.signed_in(&rival, Role::Owner).await;
    assert_eq!(
        stranger.get(&format!("/api/chat/{sid}/poll/")).await.status,
        403
    );
});

async fn working_config(app: &TestApp, team: &TestTeam, bot: uuid::Uuid) -> serde_json::Value {
    use domain::chatbot_versions::{Which, config_of};
    config_of(&app.domain, team.id, bot, Which::Working)
        .await
        .unwrap()
}

both_backends!(
    editing_the_working_version_and_rolling_back,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let bot = app.echo_bot(&team).await;
        app.publish(&team, bot, "first", true).await;
        let v1 = working_config(app, &team, bot).await;
        let c = app.signed_in(&team, Role::ChatbotAdmin).await;
        let edit = format!("/a/acme/chatbots/{bot}/edit/");
        let page = c.get(&edit).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("model: echo"), "{}", page.body);

        // A node the platform refuses: the reason, at its node and line; nothing saved.
        let bad = "pipeline:\n  nodes:\n  - id: start\n    type: start\n  - id: talk\n    type: llm\n    params: {provider: local}\n  - id: end\n    type: end\n  edges:\n  - {from: start, to: talk}\n  - {from: talk, to: end}\n";
        let p = c
            .submit(
                &edit,
                &[("name", "Renamed"), ("description", ""), ("config", bad)],
            )
            .await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(
            p.body.contains("At node <code>talk</code>, line 5."),
            "{}",
            p.body
        );
        assert!(
            p.body.contains("<mark>   5   - id: talk</mark>"),
            "{}",
            p.body
        );
        assert_eq!(working_config(app, &team, bot).await, v1);
        let p = c
            .submit(
                &edit,
                &[("name", "Renamed"), ("config", "pipeline:\n  nodes: [\n")],
            )
            .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("invalid YAML"), "{}", p.body);
        assert!(p.body.contains("line "), "{}", p.body);

        let good = bad.replace(
            "{provider: local}",
            "{provider: local, model: echo, prompt: Be kind.}",
        );
        let p = c
            .submit(
                &edit,
                &[
                    ("name", "Renamed"),
                    ("description", "Kinder"),
                    ("config", &good),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let now = working_config(app, &team, bot).await;
        assert_eq!(
            now["pipeline"]["nodes"][1]["params"]["prompt"],
            json!("Be kind.")
        );
        let api = app
            .get_json(&format!("/api/experiments/{bot}/"), &team.key)
            .await;
        assert_eq!(api["name"], json!("Renamed"));

        // Roll back to v1: its configuration is the working one again.
        let p = c
            .submit(&format!("/a/acme/chatbots/{bot}/versions/1/restore/"), &[])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(working_config(app, &team, bot).await, v1);
        let p = c
            .submit(&format!("/a/acme/chatbots/{bot}/versions/9/restore/"), &[])
            .await;
        assert_eq!(p.status, 404);

        // Without the token, or as a chat viewer: refused, nothing changed.
        let p = c.post(&edit, &[("name", "X"), ("config", &good)]).await;
        assert_eq!(p.status, 403);
        let viewer = app.signed_in(&team, Role::ChatViewer).await;
        assert_eq!(viewer.get(&edit).await.status, 403);
        let p = viewer
            .submit(&edit, &[("name", "X"), ("config", &good)])
            .await;
        assert_eq!(p.status, 403);
        let p = viewer
            .submit(&format!("/a/acme/chatbots/{bot}/versions/1/restore/"), &[])
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(working_config(app, &team, bot).await, v1);
        let api = app
            .get_json(&format!("/api/experiments/{bot}/"), &team.key)
            .await;
        assert_eq!(api["name"], json!("Renamed"));
    }
);

both_backends!(
    the_pipeline_drawn_and_versions_compared,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        app.provider(&team, "local", "builtin", None, None).await;
        let bot = app
            .llm_chatbot(&team, "local", "echo", "Be brief.", json!({}))
            .await;
        app.publish(&team, bot, "first", true).await;
        let c = app.signed_in(&team, Role::ChatViewer).await;
        let page = c.get(&format!("/a/acme/chatbots/{bot}/")).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("<svg") && page.body.contains("role=\"img\""),
            "{}",
            page.body
        );
        for node in ["start", "llm", "end"] {
            assert!(
                page.body.contains(&format!("data-node=\"{node}\"")),
                "{node}"
            );
        }
        assert!(page.body.contains("compare/?from=1&amp;to=working"));

        let same = c
            .get(&format!(
                "/a/acme/chatbots/{bot}/compare/?from=1&to=working"
            ))
            .await;
        assert_eq!(same.status, 200, "{}", same.body);
        assert!(same.body.contains("The two configurations are the same."));

        let admin = app.signed_in(&team, Role::ChatbotAdmin).await;
        let mut config = domain::chatbot_versions::config_of(
            &app.domain,
            team.id,
            bot,
            domain::chatbot_versions::Which::Working,
        )
        .await
        .unwrap();
        config["pipeline"]["nodes"][1]["params"]["prompt"] = json!("Be thorough.");
        let yaml = yaml_serde::to_string(&config).unwrap();
        let p = admin
            .submit(
                &format!("/a/acme/chatbots/{bot}/edit/"),
                &[("name", "Bot"), ("config", &yaml)],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let diff = c
            .get(&format!(
                "/a/acme/chatbots/{bot}/compare/?from=1&to=working"
            ))
            .await;
        assert!(
            diff.body
                .contains("<span class=\"removed\">-       prompt: Be brief.</span>"),
            "{}",
            diff.body
        );
        assert!(
            diff.body
                .contains("<span class=\"added\">+       prompt: Be thorough.</span>"),
            "{}",
            diff.body
        );
        assert!(diff.body.contains("@@ -"), "a hunk header");
        assert_eq!(
            c.get(&format!(
                "/a/acme/chatbots/{bot}/compare/?from=7&to=working"
            ))
            .await
            .status,
            404
        );
        assert_eq!(
            c.get(&format!(
                "/a/acme/chatbots/{bot}/compare/?from=x&to=working"
            ))
            .await
            .status,
            400
        );
    }
);

fn shown_secret(body: &str) -> String {
    let start =
        body.find("id=\"shown-secret\">").expect("a secret shown") + "id=\"shown-secret\">".len();
    body[start..].split('<').next().unwrap().trim().to_string()
}

async fn user_id(app: &TestApp, email: &str) -> i64 {
    app.scalar(&format!("SELECT id FROM users WHERE email = '{email}'"))
        .await
}

both_backends!(
    team_admins_manage_keys_and_members,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let rival = app.team("rival").await;
        let c = app.signed_in(&team, Role::TeamAdmin).await;

        // A read-only key, shown once, that works; then revoked.
        let p = c
            .submit("/a/acme/team/keys/", &[("name", "reporting")])
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let key = shown_secret(&p.body);
        assert!(key.contains('.'), "{key}");
        assert_eq!(app.get("/api/experiments/", &key).await.status(), 200);
        let (s, _) = app.post_json("/api/sessions/", &key, &json!({})).await;
        assert_eq!(s, 403, "read-only");
        let again = c.get("/a/acme/team/").await;
        assert!(!again.body.contains(&key), "shown once");
        let prefix = key.split('.').next().unwrap();
        // Another team's key cannot be revoked from here.
        let rival_prefix = rival.key.split('.').next().unwrap();
        let p = c
            .submit(&format!("/a/acme/team/keys/{rival_prefix}/revoke/"), &[])
            .await;
        assert_eq!(p.status, 404);
        assert_eq!(app.get("/api/experiments/", &rival.key).await.status(), 200);
        let p = c
            .submit(&format!("/a/acme/team/keys/{prefix}/revoke/"), &[])
            .await;
        assert_eq!(p.status, 303);
        assert_eq!(app.get("/api/experiments/", &key).await.status(), 401);
        let p = c
            .submit(
                "/a/acme/team/keys/",
                &[("name", "writer"), ("read_write", "on")],
            )
            .await;
        let writer = shown_secret(&p.body);
        let (s, _) = app.post_json("/api/sessions/", &writer, &json!({})).await;
        assert_ne!(s, 403, "a read-write key may write");

        // A member with a generated password that signs in.
        let p = c
            .submit(
                "/a/acme/team/members/",
                &[("email", "bea@acme.org"), ("role", "chat_viewer")],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let shown = shown_secret(&p.body);
        let password = shown.strip_prefix("bea@acme.org: ").unwrap();
        let bea = app.console();
        assert_eq!(bea.sign_in("bea@acme.org", password).await.status, 303);
        let p = c
            .submit(
                "/a/acme/team/members/",
                &[("email", "bea@acme.org"), ("role", "chat_viewer")],
            )
            .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("already a member"));
        let p = c
            .submit(
                "/a/acme/team/members/",
                &[("email", "not an email"), ("role", "chat_viewer")],
            )
            .await;
        assert_eq!(p.status, 400);

        // Roles change; ownership is an owner's to give or take.
        let bea_id = user_id(app, "bea@acme.org").await;
        let p = c
            .submit(
                &format!("/a/acme/team/members/{bea_id}/role/"),
                &[("role", "chatbot_admin")],
            )
            .await;
        assert_eq!(p.status, 303);
        assert_eq!(bea.get("/a/acme/team/").await.status, 403);
        let p = c
            .submit(
                &format!("/a/acme/team/members/{bea_id}/role/"),
                &[("role", "owner")],
            )
            .await;
        assert_eq!(p.status, 403);
        let p = c
            .submit(
                "/a/acme/team/members/",
                &[("email", "cy@acme.org"), ("role", "owner")],
            )
            .await;
        assert_eq!(p.status, 403);
        let owner = user_id(app, "owner@acme.chatstudio.local").await;
        let p = c
            .submit(&format!("/a/acme/team/members/{owner}/remove/"), &[])
            .await;
        assert_eq!(p.status, 403);
        let rival_owner = user_id(app, "owner@rival.chatstudio.local").await;
        let p = c
            .submit(&format!("/a/acme/team/members/{rival_owner}/remove/"), &[])
            .await;
        assert_eq!(p.status, 404);
        let p = c
            .submit(&format!("/a/acme/team/members/{bea_id}/remove/"), &[])
            .await;
        assert_eq!(p.status, 303);
        assert_eq!(
            bea.get("/a/acme/chatbots/").await.status,
            404,
            "no longer a member"
        );

        // Without the token: refused.
        let p = c.post("/a/acme/team/keys/", &[("name", "x")]).await;
        assert_eq!(p.status, 403);
        let p = c
            .post(
                "/a/acme/team/members/",
                &[("email", "dee@acme.org"), ("role", "chat_viewer")],
            )
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM users WHERE email = 'dee@acme.org'")
                .await,
            0
        );
    }
);

both_backends!(
    owners_keep_one_owner_and_others_cannot_manage_the_team,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let owner = app.signed_in(&team, Role::Owner).await;
        let me = user_id(app, "owner@acme.example.org").await;
        let first = user_id(app, "owner@acme.chatstudio.local").await;
        // Two owners: one may step down, the last may not.
        let p = owner
            .submit(
                &format!("/a/acme/team/members/{first}/role/"),
                &[("role", "team_admin")],
            )
            .await;
        assert_eq!(p.status, 303);
        let p = owner
            .submit(
                &format!("/a/acme/team/members/{me}/role/"),
                &[("role", "chat_viewer")],
            )
            .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("a team keeps at least one owner"));
        let p = owner
            .submit(&format!("/a/acme/team/members/{me}/remove/"), &[])
            .await;
        assert_eq!(p.status, 400);
        let p = owner
            .submit(
                "/a/acme/team/members/",
                &[("email", "cy@acme.org"), ("role", "owner")],
            )
            .await;
        assert_eq!(p.status, 200, "an owner adds an owner");

        let keys = app.scalar("SELECT COUNT(*) FROM api_keys").await;
        for role in [Role::ChatbotAdmin, Role::ChatViewer] {
            let c = app.signed_in(&team, role).await;
            assert_eq!(c.get("/a/acme/team/").await.status, 403);
            assert_eq!(
                c.submit("/a/acme/team/keys/", &[("name", "x")])
                    .await
                    .status,
                403
            );
            let p = c
                .submit(
                    "/a/acme/team/members/",
                    &[("email", "eve@acme.org"), ("role", "team_admin")],
                )
                .await;
            assert_eq!(p.status, 403);
            let p = c
                .submit(
                    &format!("/a/acme/team/members/{me}/role/"),
                    &[("role", "chat_viewer")],
                )
                .await;
            assert_eq!(p.status, 403);
            let prefix = team.key.split('.').next().unwrap();
            let p = c
                .submit(&format!("/a/acme/team/keys/{prefix}/revoke/"), &[])
                .await;
            assert_eq!(p.status, 403);
        }
        assert_eq!(app.scalar("SELECT COUNT(*) FROM api_keys").await, keys);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM users WHERE email = 'eve@acme.org'")
                .await,
            0
        );
        assert_eq!(app.get("/api/experiments/", &team.key).await.status(), 200);
    }
);

fn widget_start(app: &TestApp, bot: uuid::Uuid, key: &str) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/api/chat/start/"))
        .header("X-Embed-Key", key)
        .header("Origin", "https://www.example.org")
        .json(&json!({"chatbot_id": bot}))
}

both_backends!(
    channels_added_and_managed_in_the_console,
    chatstudio_testkit::Options {
        fake_telegram: true,
        public_url: Some("https://chat.example.org".into()),
        ..Default::default()
    },
    async |app: &TestApp| {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        let team = app.team("acme").await;
        let bot = app.echo_bot(&team).await;
        let c = app.signed_in(&team, Role::ChatbotAdmin).await;
        let base = format!("/a/acme/chatbots/{bot}/channels/");
        let p = c.get(&base).await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("No channels yet"));

        // A widget: the key shown once with the snippet, and it works.
        let p = c
            .submit(
                &format!("{base}widget/"),
                &[("domains", "www.example.org"), ("auth_level", "embed_key")],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let key = shown_secret(&p.body);
        assert!(
            p.body.contains(&format!("chatbot-id=&quot;{bot}&quot;")),
            "{}",
            p.body
        );
        assert!(p.body.contains(&format!("embed-key=&quot;{key}&quot;")));
        assert!(
            p.body
                .contains("api-base-url=&quot;https:&#x2f;&#x2f;chat.example.org&quot;"),
            "{}",
            p.body
        );
        assert_eq!(
            widget_start(app, bot, &key).send().await.unwrap().status(),
            201
        );
        let p = c.get(&base).await;
        assert!(!p.body.contains(&key), "shown once");
        assert!(p.body.contains("www.example.org"));
        let channel = app
            .rows(
                "SELECT platform FROM channels WHERE deleted = false",
                &["platform"],
            )
            .await;
        assert!(
            channel
                .iter()
                .any(|r| r["platform"] == json!("embedded_widget"))
        );
        let p = c
            .submit(&format!("{base}widget/"), &[("domains", "not a host!")])
            .await;
        assert_eq!(p.status, 400);

        // Turned off with a message, on again, a new key, removed.
        let id = domain::channels::of_chatbot(&app.domain, team.id, bot)
            .await
            .unwrap()[0]
            .id;
        let p = c
            .submit(
                &format!("{base}{id}/disable/"),
                &[("message", "Back on Monday")],
            )
            .await;
        assert_eq!(p.status, 303);
        let r = widget_start(app, bot, &key).send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("Back on Monday"));
        assert_eq!(
            c.submit(&format!("{base}{id}/enable/"), &[]).await.status,
            303
        );
        let p = c.submit(&format!("{base}{id}/rotate/"), &[]).await;
        assert_eq!(p.status, 200);
        let new_key = shown_secret(&p.body);
        assert_ne!(new_key, key);
        assert_eq!(
            widget_start(app, bot, &key).send().await.unwrap().status(),
            401
        );
        assert_eq!(
            widget_start(app, bot, &new_key)
                .send()
                .await
                .unwrap()
                .status(),
            201
        );

        // A chat viewer sees the channels but changes nothing; another team's channel is 404.
        let viewer = app.signed_in(&team, Role::ChatViewer).await;
        let p = viewer.get(&base).await;
        assert_eq!(p.status, 200);
        assert!(!p.body.contains("Add a chat widget"));
        assert_eq!(
            viewer
                .submit(&format!("{base}{id}/remove/"), &[])
                .await
                .status,
            403
        );
        assert_eq!(
            viewer
                .submit(&format!("{base}widget/"), &[("domains", "a.org")])
                .await
                .status,
            403
        );
        let rival = app.team("rival").await;
        let theirs = app.echo_bot(&rival).await;
        let (their_channel, _) = domain::channels::widget::add(
            &app.domain,
            theirs,
            &["rival.org".into()],
            domain::channels::widget::AuthLevel::EmbedKey,
            None,
        )
        .await
        .unwrap();
        let p = c
            .submit(&format!("{base}{}/remove/", their_channel.id), &[])
            .await;
        assert_eq!(p.status, 404);
        let p = c
            .submit(
                &format!("/a/acme/chatbots/{theirs}/channels/widget/"),
                &[("domains", "a.org")],
            )
            .await;
        assert_eq!(p.status, 404);
        assert_eq!(
            c.submit(&format!("{base}{id}/remove/"), &[]).await.status,
            303
        );
        assert_eq!(
            widget_start(app, bot, &new_key)
                .send()
                .await
                .unwrap()
                .status(),
            401
        );

        // Telegram: the token checked with getMe, the webhook registered at the public URL.
        Mock::given(method("GET"))
            .and(path("/bot42:GOOD/getMe"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"id": 42, "is_bot": true, "first_name": "Helper", "username": "HelperBot"}})))
            .mount(app.telegram())
            .await;
        Mock::given(method("GET"))
            .and(path("/bot42:BAD/getMe"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ))
            .mount(app.telegram())
            .await;
        Mock::given(method("POST"))
            .and(path("/bot42:GOOD/setWebhook"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": true})),
            )
            .expect(1)
            .mount(app.telegram())
            .await;
        let p = c
            .submit(&format!("{base}telegram/"), &[("token", "42:BAD")])
            .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("Telegram did not accept the bot token"));
        let p = c
            .submit(&format!("{base}telegram/"), &[("token", "42:GOOD")])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = c.get(&base).await;
        assert!(p.body.contains("@HelperBot"), "{}", p.body);
        assert!(!p.body.contains("42:GOOD"), "the token is never shown");
    }
);

both_backends!(sessions_filtered_and_tagged, async |app: &TestApp| {
    let team = app.team("acme").await;
    let bot = app.echo_bot(&team).await;
    for who in ["ada@acme.org", "bo@acme.org"] {
        let (s, body) = app
            .post_json(
                "/api/sessions/",
                &team.key,
                &json!({"experiment": bot, "participant": who}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    app.api_message(&team, bot, "hello").await;
    let ada = app
        .rows(
            "SELECT s.external_id FROM sessions s JOIN participants p ON p.id = s.participant_id WHERE p.identifier = 'ada@acme.org'",
            &["external_id"],
        )
        .await[0]["external_id"]
        .as_str()
        .unwrap()
        .to_string();
    let total = app.scalar("SELECT COUNT(*) FROM sessions").await;
    assert_eq!(total, 3);
    let c = app.signed_in(&team, Role::ChatbotAdmin).await;
    let count = |body: &str| -> usize { body.matches("/a/acme/sessions/").count() };
    let all = c.get("/a/acme/sessions/").await;
    let baseline = count(&all.body);
    let p = c.get("/a/acme/sessions/?participant=ada%40acme.org").await;
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains(&ada[..8]) && p.body.contains("1 sessions"),
        "{}",
        p.body
    );
    assert_eq!(count(&p.body), baseline - 2);
    // The API's own sessions name no channel; the chat API's turn is on `api`.
    let p = c.get("/a/acme/sessions/?channel=api").await;
    assert!(p.body.contains("1 sessions"), "{}", p.body);
    let p = c.get("/a/acme/sessions/?channel=telegram").await;
    assert!(p.body.contains("No sessions match"));
    let p = c.get("/a/acme/sessions/?status=active").await;
    assert!(p.body.contains("sessions."), "{}", p.body);
    let today = chrono::Utc::now().date_naive();
    let p = c
        .get(&format!("/a/acme/sessions/?from={today}&to={today}"))
        .await;
    assert!(p.body.contains("3 sessions"), "{}", p.body);
    let tomorrow = today.succ_opt().unwrap();
    let p = c.get(&format!("/a/acme/sessions/?from={tomorrow}")).await;
    assert!(p.body.contains("No sessions match"));
    for bad in [
        "status=sleeping",
        "channel=pigeon",
        "from=yesterday",
        "to=2026-13-01",
    ] {
        assert_eq!(
            c.get(&format!("/a/acme/sessions/?{bad}")).await.status,
            400,
            "{bad}"
        );
    }

    // Tags added and taken off; the tag filter finds them; the CSV keeps the filters.
    let page = format!("/a/acme/sessions/{ada}/");
    let p = c
        .submit(&format!("{page}tags/add/"), &[("name", "needs-review")])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let p = c.get(&page).await;
    assert!(p.body.contains("needs-review"));
    let p = c.get("/a/acme/sessions/?tag=needs-review").await;
    assert!(p.body.contains("1 sessions"), "{}", p.body);
    assert!(
        p.body.contains("export.csv?chatbot=&amp;tag=needs-review"),
        "{}",
        p.body
    );
    assert_eq!(
        c.submit(&format!("{page}tags/add/"), &[("name", " ")])
            .await
            .status,
        400
    );
    let viewer = app.signed_in(&team, Role::ChatViewer).await;
    assert_eq!(
        viewer
            .submit(&format!("{page}tags/remove/"), &[("name", "needs-review")])
            .await
            .status,
        403
    );
    assert_eq!(
        c.post(&format!("{page}tags/remove/"), &[("name", "needs-review")])
            .await
            .status,
        403
    );
    let p = c
        .submit(&format!("{page}tags/remove/"), &[("name", "needs-review")])
        .await;
    assert_eq!(p.status, 303);
    let p = c.get("/a/acme/sessions/?tag=needs-review").await;
    assert!(p.body.contains("No sessions match"));
    let rival = app.team("rival").await;
    let stranger = app.signed_in(&rival, Role::Owner).await;
    assert_eq!(
        stranger
            .submit(
                &format!("/a/rival/sessions/{ada}/tags/add/"),
                &[("name", "x")]
            )
            .await
            .status,
        404
    );
});

both_backends!(
    participants_their_data_and_schedules,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let bot = app.echo_bot(&team).await;
        let (s, body) = app
        .post_json(
            "/api/participants/",
            &team.key,
            &json!({"identifier": "ada@acme.org", "platform": "api", "data": [{
                "experiment": bot, "data": {"name": "Ada", "age": 36},
                "schedules": [{"name": "check-in", "prompt": "Ask how Ada is", "date": "2031-01-01T09:00:00Z"}]
            }]}),
        )
        .await;
        assert!(s == 200 || s == 201, "{s} {body}");
        let viewer = app.signed_in(&team, Role::ChatViewer).await;
        let p = viewer.get("/a/acme/participants/").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("ada@acme.org"), "{}", p.body);
        let href = p
            .body
            .split("href=\"/a/acme/participants/")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .find(|s| s.len() == 37 && s.ends_with('/'))
            .unwrap()
            .to_string();
        let page = format!("/a/acme/participants/{href}");
        let p = viewer.get(&page).await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("&quot;age&quot;: 36"), "{}", p.body);
        assert!(
            p.body.contains("check-in") && p.body.contains("Ask how Ada is"),
            "{}",
            p.body
        );
        assert!(!p.body.contains("Save the data"), "a viewer reads only");
        let p = viewer.get("/a/acme/participants/?identifier=nobody").await;
        assert!(p.body.contains("No participants match"));
        assert_eq!(
            viewer
                .get("/a/acme/participants/?channel=pigeon")
                .await
                .status,
            400
        );
        assert_eq!(
            viewer.get("/a/acme/participants/not-a-uuid/").await.status,
            404
        );
        let save = format!("{page}data/{bot}/");
        assert_eq!(
            viewer
                .submit(&save, &[("data", "{\"age\": 1}")])
                .await
                .status,
            403
        );

        let admin = app.signed_in(&team, Role::ChatbotAdmin).await;
        let p = admin.submit(&save, &[("data", "[1, 2]")]).await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("must be a JSON object"));
        let p = admin.submit(&save, &[("data", "{oops")]).await;
        assert_eq!(p.status, 400);
        assert_eq!(
            admin.post(&save, &[("data", "{}")]).await.status,
            403,
            "no CSRF token"
        );
        let p = admin
            .submit(&save, &[("data", "{\"name\": \"Ada L.\", \"age\": 37}")])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = admin.get(&page).await;
        assert!(
            p.body.contains("&quot;age&quot;: 37") && p.body.contains("Ada L."),
            "{}",
            p.body
        );

        // Another team's participant is not here.
        let rival = app.team("rival").await;
        let stranger = app.signed_in(&rival, Role::Owner).await;
        assert_eq!(
            stranger
                .get(&page.replace("/a/acme/", "/a/rival/"))
                .await
                .status,
            404
        );
        assert_eq!(
            stranger
                .submit(&save.replace("/a/acme/", "/a/rival/"), &[("data", "{}")])
                .await
                .status,
            404
        );
    }
);

both_backends!(providers_added_tested_and_removed, async |app: &TestApp| {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-good"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
        })))
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-bad"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}),
        ))
        .mount(&fake)
        .await;
    let team = app.team("acme").await;
    let c = app.signed_in(&team, Role::TeamAdmin).await;
    let endpoint = format!("{}/v1", fake.uri());
    for (name, key) in [("good", "sk-good"), ("bad", "sk-bad")] {
        let p = c
            .submit(
                "/a/acme/team/providers/",
                &[
                    ("name", name),
                    ("kind", "openai"),
                    ("base_url", &endpoint),
                    ("api_key", key),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
    }
    let p = c.get("/a/acme/team/").await;
    assert!(
        p.body.contains("set (never shown)") && !p.body.contains("sk-good"),
        "{}",
        p.body
    );
    let stored = app.rows("SELECT secret FROM providers", &["secret"]).await;
    assert!(
        stored
            .iter()
            .all(|r| !r["secret"].as_str().unwrap_or("").contains("sk-")),
        "sealed"
    );

    let p = c
        .submit(
            "/a/acme/team/providers/good/test/",
            &[("model", "gpt-test")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body.contains("good answered with gpt-test in"),
        "{}",
        p.body
    );
    let p = c
        .submit("/a/acme/team/providers/bad/test/", &[("model", "gpt-test")])
        .await;
    assert!(p.body.contains("bad did not answer"), "{}", p.body);
    assert!(!p.body.contains("sk-bad"), "the key is never shown");
    assert_eq!(
        c.submit("/a/acme/team/providers/nobody/test/", &[("model", "m")])
            .await
            .status,
        400
    );

    // Refused: a bad type, a taken name, a private endpoint.
    let p = c
        .submit(
            "/a/acme/team/providers/",
            &[("name", "x"), ("kind", "oracle"), ("api_key", "k")],
        )
        .await;
    assert_eq!(p.status, 400);
    let p = c
        .submit(
            "/a/acme/team/providers/",
            &[("name", "good"), ("kind", "openai"), ("api_key", "k")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("already has a provider"));
    for private in [
        "http://10.0.0.5/v1",
        "http://169.254.169.254/",
        "http://[::1]:9/v1",
    ] {
        let p = c
            .submit(
                "/a/acme/team/providers/",
                &[
                    ("name", "local"),
                    ("kind", "openai"),
                    ("base_url", private),
                    ("api_key", "k"),
                ],
            )
            .await;
        assert_eq!(p.status, 400, "{private}");
        assert!(p.body.contains("The endpoint is refused"), "{}", p.body);
    }

    let p = c.submit("/a/acme/team/providers/bad/remove/", &[]).await;
    assert_eq!(p.status, 303);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM providers").await, 1);
    let viewer = app.signed_in(&team, Role::ChatbotAdmin).await;
    assert_eq!(
        viewer
            .submit("/a/acme/team/providers/good/remove/", &[])
            .await
            .status,
        403
    );
    assert_eq!(
        viewer
            .submit(
                "/a/acme/team/providers/",
                &[("name", "z"), ("kind", "builtin")]
            )
            .await
            .status,
        403
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM providers").await, 1);
});

both_backends!(
    team_prices_versions_and_participant_csv,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let bot = app.echo_bot(&team).await;
        let admin = app.signed_in(&team, Role::TeamAdmin).await;
        let p = admin
            .submit(
                "/a/acme/team/prices/",
                &[
                    ("provider_kind", "builtin"),
                    ("model", "echo"),
                    ("kind", "input"),
                    ("usd_per_1m", "2.50"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = admin.get("/a/acme/team/").await;
        assert!(
            p.body
                .contains("<td>echo</td><td>input</td><td>2.50000000</td>"),
            "{}",
            p.body
        );
        for (field, value) in [
            ("usd_per_1m", "cheap"),
            ("kind", "tips"),
            ("provider_kind", "oracle"),
            ("model", " "),
        ] {
            let mut form = vec![
                ("provider_kind", "builtin"),
                ("model", "echo"),
                ("kind", "input"),
                ("usd_per_1m", "1"),
            ];
            for f in form.iter_mut() {
                if f.0 == field {
                    f.1 = value;
                }
            }
            assert_eq!(
                admin.submit("/a/acme/team/prices/", &form).await.status,
                400,
                "{field}"
            );
        }
        let bots = app.signed_in(&team, Role::ChatbotAdmin).await;
        let p = bots
            .submit(
                "/a/acme/team/prices/",
                &[
                    ("provider_kind", "builtin"),
                    ("model", "echo"),
                    ("kind", "output"),
                    ("usd_per_1m", "9"),
                ],
            )
            .await;
        assert_eq!(p.status, 403);
        // The price is used from now on.
        app.api_message(&team, bot, "hello").await;
        let cost = app.scalar("SELECT COUNT(*) FROM usage_records WHERE service_kind = 'llm_input' AND cost_e8 > 0").await;
        assert!(cost > 0, "priced at the team's price");

        // Sessions by the version that answered.
        app.publish(&team, bot, "first", true).await;
        app.api_message(&team, bot, "again").await;
        let c = app.signed_in(&team, Role::ChatViewer).await;
        let v1 = c.get("/a/acme/sessions/?version=v1").await;
        assert!(v1.body.contains("1 sessions"), "{}", v1.body);
        let v9 = c.get("/a/acme/sessions/?version=9").await;
        assert!(v9.body.contains("No sessions match"));
        assert_eq!(c.get("/a/acme/sessions/?version=latest").await.status, 400);

        // Participants' data as CSV.
        let (s, body) = app
        .post_json(
            "/api/participants/",
            &team.key,
            &json!({"identifier": "ada@acme.org", "platform": "api", "data": [{"experiment": bot, "data": {"age": 36, "note": "likes, commas"}}]}),
        )
        .await;
        assert!(s == 200 || s == 201, "{s} {body}");
        let p = c.get("/a/acme/participants/").await;
        assert!(
            p.body
                .contains("export.csv?identifier=&amp;channel=&amp;chatbot="),
            "{}",
            p.body
        );
        let csv = c
            .get("/a/acme/participants/export.csv?identifier=ada%40acme.org")
            .await;
        assert_eq!(csv.status, 200);
        assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
        let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], "identifier,name,channel,chatbot,data");
        assert_eq!(lines.len(), 2, "{}", csv.body);
        assert!(
            lines[1].starts_with("ada@acme.org,,api,Bot,\"{"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].contains("\"\"note\"\":\"\"likes, commas\"\""),
            "{}",
            lines[1]
        );
        let rival = app.team("rival").await;
        let stranger = app.signed_in(&rival, Role::Owner).await;
        let theirs = stranger.get("/a/rival/participants/export.csv").await;
        assert!(!theirs.body.contains("ada@acme.org"));
    }
);

both_backends!(
    a_whatsapp_number_connected_in_the_console,
    async |app: &TestApp| {
        use domain::messaging::{self, Credentials};
        let team = app.team("acme").await;
        let bot = app.echo_bot(&team).await;
        let c = app.signed_in(&team, Role::ChatbotAdmin).await;
        let base = format!("/a/acme/chatbots/{bot}/channels/");
        let p = c.get(&base).await;
        assert!(p.body.contains("no messaging provider yet"), "{}", p.body);
        messaging::add(
            &app.domain.db.write,
            &app.domain.secrets,
            team.id,
            "twilio",
            Credentials::Twilio {
                account_sid: "AC0123".into(),
                auth_token: "twilio-secret".into(),
                template_content_sid: None,
            },
        )
        .await
        .unwrap();
        let p = c.get(&base).await;
        assert!(p.body.contains("twilio (twilio)"), "{}", p.body);
        let p = c
            .submit(
                &format!("{base}whatsapp/"),
                &[("provider", "twilio"), ("number", "+1 415 523 8886")],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Connected +14155238886"), "{}", p.body);
        assert!(
            p.body
                .contains("channels&#x2f;twilio&#x2f;incoming_message"),
            "{}",
            p.body
        );
        assert!(!p.body.contains("twilio-secret"));
        let listed = domain::channels::of_chatbot(&app.domain, team.id, bot)
            .await
            .unwrap();
        assert_eq!(listed[0].platform, "whatsapp");
        assert_eq!(listed[0].address.as_deref(), Some("+14155238886"));
        // The same number again, a bad number, another team's provider name: refused.
        let p = c
            .submit(
                &format!("{base}whatsapp/"),
                &[("provider", "twilio"), ("number", "+14155238886")],
            )
            .await;
        assert_eq!(p.status, 400, "{}", p.body);
        let p = c
            .submit(
                &format!("{base}whatsapp/"),
                &[("provider", "twilio"), ("number", "call me")],
            )
            .await;
        assert_eq!(p.status, 400);
        let p = c
            .submit(
                &format!("{base}whatsapp/"),
                &[("provider", "nobody"), ("number", "+14155550000")],
            )
            .await;
        assert_eq!(p.status, 404);
        let viewer = app.signed_in(&team, Role::ChatViewer).await;
        let p = viewer
            .submit(
                &format!("{base}whatsapp/"),
                &[("provider", "twilio"), ("number", "+14155550001")],
            )
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(
            domain::channels::of_chatbot(&app.domain, team.id, bot)
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

both_backends!(session_pages_follow_their_cursor, async |app: &TestApp| {
    let team = app.team("acme").await;
    let bot = app.echo_bot(&team).await;
    for i in 0..55 {
        let (s, body) = app
            .post_json(
                "/api/sessions/",
                &team.key,
                &json!({"experiment": bot, "participant": format!("p{i}@acme.org")}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let c = app.signed_in(&team, Role::ChatViewer).await;
    let first = c.get(&format!("/a/acme/sessions/?chatbot={bot}")).await;
    assert!(first.body.contains("55 sessions"), "{}", first.body);
    let rows = |body: &str| body.matches("<td><a href=\"/a/acme/sessions/").count();
    assert_eq!(rows(&first.body), 50);
    let older = first
        .body
        .split("<a href=\"")
        .find_map(|s| {
            s.split_once("\" rel=\"next\"")
                .map(|(href, _)| href.replace("&amp;", "&"))
        })
        .expect("an Older link");
    assert!(
        older.contains(&format!("chatbot={bot}")),
        "the filter is kept: {older}"
    );
    let second = c.get(&format!("/a/acme/sessions/{older}")).await;
    assert_eq!(second.status, 200);
    assert_eq!(rows(&second.body), 5);
    assert!(second.body.contains("rel=\"prev\"") && !second.body.contains("rel=\"next\""));
    let bad = c.get("/a/acme/sessions/?cursor=forged").await;
    assert!(
        matches!(bad.status, 400 | 404),
        "a cursor we did not issue: {}",
        bad.status
    );
});
