//! The console's OAuth applications page over HTTP: a team admin lists,
//! registers (the client secret shown once, and real) and removes them;
//! other roles, forms without the CSRF token and another team's application
//! are refused with nothing changed. And the widget channel form's OAuth
//! credential mode.

use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use domain::teams::Role;
use serde_json::Value;

const PAGE: &str = "/a/acme/team/oauth-apps/";

/// The text of the `<pre>` with this id (a value shown once).
fn shown(body: &str, id: &str) -> String {
    let open = format!("id=\"{id}\">");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {id} in {body}"))
        + open.len();
    body[start..].split('<').next().unwrap().trim().to_string()
}

async fn apps_of(app: &TestApp, team: &TestTeam) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM oauth_apps WHERE team_id = {}",
        team.id.0
    ))
    .await
}

/// A form posted as an OAuth client sends it; the status and JSON body.
async fn oauth_post(
    app: &TestApp,
    path: &str,
    client: (&str, &str),
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let r = app
        .client
        .post(app.url(path))
        .basic_auth(client.0, Some(client.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn machine_token(app: &TestApp, client: (&str, &str)) -> (u16, Value) {
    oauth_post(
        app,
        "/o/token/",
        client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "chat:start"),
        ],
    )
    .await
}

both_backends!(
    console_team_admins_register_list_and_remove_oauth_apps,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let rival = app.team("rival").await;
        let bot = app.chatbot(&team, "Helper").await;
        let rival_bot = app.chatbot(&rival, "Theirs").await;
        let c = app.signed_in(&team, Role::TeamAdmin).await;

        // Linked from the team page; one heading, a label for every field.
        let p = c.get("/a/acme/team/").await;
        assert!(p.body.contains(&format!("href=\"{PAGE}\"")), "{}", p.body);
        let p = c.get(PAGE).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.body.matches("<h1").count(), 1);
        assert!(p.body.contains("No applications yet"));
        for field in ["app-name", "app-redirects"] {
            assert!(
                p.body.contains(&format!("<label for=\"{field}\">")),
                "{field}"
            );
        }
        assert!(p.body.contains(&format!(
            "<label class=\"inline\"><input type=\"checkbox\" name=\"chatbot\" value=\"{bot}\"> Helper</label>"
        )));
        assert!(!p.body.contains("Theirs"), "only the team's chatbots");
        assert!(
            p.body
                .contains("name=\"pkce_required\" value=\"on\" checked"),
            "PKCE on by default"
        );

        // A user-facing application: its id and secret shown once, and real.
        let p = c
            .submit(
                PAGE,
                &[
                    ("name", "Dashboard"),
                    ("kind", "user"),
                    (
                        "redirect_uris",
                        "https://dash.example.org/cb\r\n\r\nhttp://localhost:8080/cb\r\n",
                    ),
                    ("pkce_required", "on"),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let user_id = shown(&p.body, "shown-client-id");
        let user_secret = shown(&p.body, "shown-secret");
        assert!(p.body.contains("shown once"));
        let (s, body) = oauth_post(
            app,
            "/o/introspect/",
            (&user_id, &user_secret),
            &[("token", "not-a-token")],
        )
        .await;
        assert_eq!((s, &body["active"]), (200, &Value::Bool(false)), "{body}");

        // A machine application for the chatbot; its secret gets a token.
        let p = c
            .submit(
                PAGE,
                &[
                    ("name", "Backend"),
                    ("kind", "machine"),
                    ("chatbot", &bot.to_string()),
                    ("pkce_required", "on"),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let machine_id = shown(&p.body, "shown-client-id");
        let machine_secret = shown(&p.body, "shown-secret");
        let (s, token) = machine_token(app, (&machine_id, &machine_secret)).await;
        assert_eq!(s, 200, "{token}");
        let access = token["access_token"].as_str().unwrap().to_string();

        // A public client: no secret to show.
        let p = c
            .submit(
                PAGE,
                &[
                    ("name", "Mobile"),
                    ("kind", "user"),
                    ("public", "on"),
                    ("redirect_uris", "https://app.example.org/cb"),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(!p.body.contains("id=\"shown-secret\""), "{}", p.body);
        assert!(p.body.contains("public client"));

        let made = domain::oauth::apps::list(&app.domain.db.read, team.id)
            .await
            .unwrap();
        assert_eq!(made.len(), 3);
        assert_eq!(
            made[0].redirect_uris,
            ["https://dash.example.org/cb", "http://localhost:8080/cb"]
        );
        assert!(made[0].confidential && made[0].pkce_required);
        assert_eq!(made[1].allowed_chatbots, [bot]);
        assert!(!made[2].confidential && made[2].pkce_required);

        // The list: every application, no secret (shown once means once).
        let p = c.get(PAGE).await;
        assert_eq!(p.status, 200);
        for id in [&user_id, &machine_id] {
            assert!(p.body.contains(id.as_str()), "{id}");
        }
        for secret in [&user_secret, &machine_secret] {
            assert!(!p.body.contains(secret.as_str()), "a secret on the list");
        }
        assert!(!p.body.contains("shown-secret"));
        assert!(p.body.contains("Machine (client credentials)"));
        // (Autoescaping writes `/` as `&#x2f;`.)
        assert!(
            p.body
                .contains("<code>http:&#x2f;&#x2f;localhost:8080&#x2f;cb</code>")
        );

        // Refusals keep the form, say why, and add nothing.
        let before = apps_of(app, &team).await;
        let refused = async |fields: &[(&str, &str)], says: &str| {
            let p = c.submit(PAGE, fields).await;
            assert_eq!(p.status, 400, "{fields:?}: {}", p.body);
            assert!(p.body.contains(says), "{says}: {}", p.body);
            p
        };
        let p = refused(
            &[
                ("name", "Typed"),
                ("kind", "machine"),
                ("redirect_uris", "https://x.example.org/cb"),
            ],
            "a machine application has no redirect URIs",
        )
        .await;
        assert!(p.body.contains("value=\"Typed\""), "the name is kept");
        assert!(
            p.body
                .contains(">https:&#x2f;&#x2f;x.example.org&#x2f;cb</textarea>")
        );
        assert!(p.body.contains("value=\"machine\" checked"));
        refused(
            &[("name", "NoUri"), ("kind", "user")],
            "needs at least one redirect URI",
        )
        .await;
        refused(
            &[
                ("name", "Theirs"),
                ("kind", "machine"),
                ("chatbot", &rival_bot.to_string()),
            ],
            "is not one of the team&#x27;s chatbots",
        )
        .await;
        refused(
            &[("name", "Bogus"), ("kind", "machine"), ("chatbot", "nope")],
            "is not one of the team&#x27;s chatbots",
        )
        .await;
        refused(
            &[
                ("name", "  "),
                ("kind", "user"),
                ("redirect_uris", "https://a.example.org/"),
            ],
            "needs a name",
        )
        .await;
        refused(
            &[("name", "Pub"), ("kind", "machine"), ("public", "on")],
            "cannot be public",
        )
        .await;
        assert_eq!(apps_of(app, &team).await, before);

        // Without the CSRF token: refused, nothing made or removed.
        let p = c
            .post(
                PAGE,
                &[
                    ("name", "Forged"),
                    ("kind", "user"),
                    ("redirect_uris", "https://f.example.org/"),
                ],
            )
            .await;
        assert_eq!(p.status, 403);
        let p = c.post(&format!("{PAGE}{machine_id}/remove/"), &[]).await;
        assert_eq!(p.status, 403);
        assert_eq!(apps_of(app, &team).await, before);

        // Another team's application is not found here.
        let (theirs, _) = domain::oauth::apps::create(
            &app.domain,
            rival.id,
            None,
            domain::oauth::NewApp {
                name: "Rival backend".into(),
                kind: domain::oauth::AppKind::Machine,
                public: false,
                redirect_uris: Vec::new(),
                chatbots: vec![rival_bot],
                pkce_required: true,
            },
        )
        .await
        .unwrap();
        let p = c
            .submit(&format!("{PAGE}{}/remove/", theirs.client_id), &[])
            .await;
        assert_eq!(p.status, 404);
        assert_eq!(apps_of(app, &rival).await, 1);
        assert!(!c.get(PAGE).await.body.contains("Rival backend"));

        // Removed: back to the list, and its token no longer works.
        let p = c.submit(&format!("{PAGE}{machine_id}/remove/"), &[]).await;
        assert_eq!((p.status, p.location()), (303, PAGE));
        assert_eq!(apps_of(app, &team).await, before - 1);
        let (s, body) = oauth_post(
            app,
            "/o/introspect/",
            (&user_id, &user_secret),
            &[("token", &access)],
        )
        .await;
        assert_eq!((s, &body["active"]), (200, &Value::Bool(false)), "{body}");
        assert!(!c.get(PAGE).await.body.contains(&machine_id));
        let p = c.submit(&format!("{PAGE}{machine_id}/remove/"), &[]).await;
        assert_eq!(p.status, 404);
    }
);

both_backends!(
    console_only_team_admins_manage_oauth_apps,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let owner = app.signed_in(&team, Role::Owner).await;
        let p = owner
            .submit(
                PAGE,
                &[
                    ("name", "Ops"),
                    ("kind", "user"),
                    ("redirect_uris", "https://ops.example.org/cb"),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "an owner manages the team: {}", p.body);
        let client_id = shown(&p.body, "shown-client-id");
        for role in [Role::ChatbotAdmin, Role::ChatViewer] {
            let c = app.signed_in(&team, role).await;
            let p = c.get(PAGE).await;
            assert_eq!(p.status, 403, "{role:?}");
            assert!(p.body.contains("does not allow"), "{}", p.body);
            let p = c
                .submit(
                    PAGE,
                    &[
                        ("name", "Sneaky"),
                        ("kind", "user"),
                        ("redirect_uris", "https://s.example.org/"),
                    ],
                )
                .await;
            assert_eq!(p.status, 403, "{role:?}");
            let p = c.submit(&format!("{PAGE}{client_id}/remove/"), &[]).await;
            assert_eq!(p.status, 403, "{role:?}");
            // The team page's link is not theirs to follow either.
            assert_eq!(c.get("/a/acme/team/").await.status, 403);
        }
        assert_eq!(apps_of(app, &team).await, 1);
        assert!(owner.get(PAGE).await.body.contains(&client_id));
    }
);

both_backends!(
    console_widget_channels_in_oauth_mode,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let bot = app.chatbot(&team, "Helper").await;
        let c = app.signed_in(&team, Role::ChatbotAdmin).await;
        let base = format!("/a/acme/chatbots/{bot}/channels/");
        let p = c.get(&base).await;
        assert!(p.body.contains("name=\"credential_mode\" value=\"oauth\""));

        // An embed-key widget still needs a page host; a mode we do not know is refused.
        let p = c
            .submit(
                &format!("{base}widget/"),
                &[("credential_mode", "embed_key")],
            )
            .await;
        assert_eq!(p.status, 400);
        assert!(
            p.body.contains("needs at least one page host"),
            "{}",
            p.body
        );
        let p = c
            .submit(&format!("{base}widget/"), &[("credential_mode", "magic")])
            .await;
        assert_eq!(p.status, 400);
        let widgets = "SELECT COUNT(*) FROM channels WHERE platform = 'embedded_widget'";
        assert_eq!(app.scalar(widgets).await, 0);

        // Server-only OAuth: no domains, no embed key shown, the mode listed.
        let p = c
            .submit(
                &format!("{base}widget/"),
                &[("credential_mode", "oauth"), ("domains", "")],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(!p.body.contains("shown-secret"), "no embed key for OAuth");
        assert!(p.body.contains("from servers only"), "{}", p.body);
        assert!(p.body.contains("embedded_widget (OAuth)"), "{}", p.body);
        assert!(p.body.contains("servers only</td>"), "{}", p.body);
        assert!(!p.body.contains("/rotate/"), "no embed key to replace");
        assert_eq!(app.scalar(widgets).await, 1);

        // A machine application of the team starts a chat through it.
        let (made, secret) = domain::oauth::apps::create(
            &app.domain,
            team.id,
            None,
            domain::oauth::NewApp {
                name: "Backend".into(),
                kind: domain::oauth::AppKind::Machine,
                public: false,
                redirect_uris: Vec::new(),
                chatbots: vec![bot],
                pkce_required: true,
            },
        )
        .await
        .unwrap();
        let secret = secret.unwrap();
        let (s, token) = machine_token(app, (&made.client_id, &secret)).await;
        assert_eq!(s, 200, "{token}");
        let r = app
            .client
            .post(app.url("/api/chat/start/"))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .json(&serde_json::json!({"chatbot_id": bot}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);

        // An embed-key widget beside it is listed as such, with its key.
        let p = c
            .submit(
                &format!("{base}widget/"),
                &[
                    ("credential_mode", "embed_key"),
                    ("domains", "www.example.org"),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(shown(&p.body, "shown-secret").starts_with("ek_"));
        assert!(p.body.contains("embedded_widget (embed key)"), "{}", p.body);
    }
);
