#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests and their harness fail loudly"
)]
//! The admin CLI, run as a separate process against the same database the
//! server uses (a SQLite file, or the PostgreSQL database of the app).

use testkit::process::Binary;
use testkit::{Backend, TestApp, both_backends};

use serde_json::Value;

fn chatstudio(app: &TestApp) -> Binary {
    Binary::new(env!("CARGO_BIN_EXE_chatstudio"), app)
}

/// `chatbot apply --team acme` of a file holding `text`: it must be refused; the error.
fn apply_refused(cli: &Binary, text: &str) -> String {
    let (ok, _, err) = cli.apply("acme", "refused.yaml", text);
    assert!(!ok, "applied: {text}");
    err
}

fn last_line(s: &str) -> String {
    s.trim_end().lines().last().unwrap_or("").to_string()
}

both_backends!(admin_cli_round_trip, async |app: &TestApp| {
    let cli = chatstudio(app);
    cli.ok(&["team", "create", "acme", "--name", "Acme Health"]);
    let teams: Value = serde_json::from_str(&cli.ok(&["team", "list", "--json"])).unwrap();
    assert!(
        teams
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["slug"] == "acme")
    );

    // Duplicates and bad slugs fail with one line and a non-zero exit.
    let (success, _, err) = cli.run(&["team", "create", "acme"]);
    assert!(!success);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error:"), "{err}");
    let (success, _, _) = cli.run(&["team", "create", "bad slug!"]);
    assert!(!success);

    let ro = last_line(&cli.ok(&["key", "create", "--team", "acme", "--name", "reader"]));
    let rw = last_line(&cli.ok(&["key", "create", "--team", "acme", "--read-write"]));
    assert!(ro.contains('.') && rw.contains('.'));

    // A setting the platform does not know is refused, by name, and nothing is created.
    let (ok, _, err) = cli.apply(
        "acme",
        "bot.yaml",
        "name: Helper\ndescription: Helps\nconfig:\n  greeting: hi\n",
    );
    assert!(!ok);
    assert!(err.contains("unknown setting \"greeting\""), "{err}");
    let id = last_line(&cli.apply_ok(
        "acme",
        "bot.yaml",
        "name: Helper\ndescription: Helps\nconfig:\n  public_chat: true\n",
    ));
    // Applying again updates the same chatbot (matched by name).
    let again = last_line(&cli.apply_ok(
        "acme",
        "bot.yaml",
        "name: Helper\ndescription: Helps more\n",
    ));
    assert_eq!(id, again);
    let other = last_line(&cli.ok(&["chatbot", "create", "--team", "acme", "--name", "Other"]));
    cli.ok(&["chatbot", "publish", &id, "--description", "v1"]);
    cli.ok(&["chatbot", "publish", &id, "--no-publish"]);
    let shown: Value = serde_json::from_str(&cli.ok(&["chatbot", "show", &id, "--json"])).unwrap();
    assert_eq!(shown["description"], "Helps more");
    assert_eq!(shown["config"]["public_chat"], true);
    assert_eq!(shown["version_number"], 3);
    assert_eq!(shown["versions"][0]["is_default_version"], true);
    assert_eq!(shown["versions"][1]["is_default_version"], false);

    // The server sees what the CLI wrote.
    let list = app.get_json("/api/experiments/", &ro).await;
    assert_eq!(list["count"], 2);
    // Read-only key from the CLI cannot write; the read-write key reaches the router.
    let r = app
        .request(reqwest::Method::POST, "/api/experiments/", Some(&ro))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .request(reqwest::Method::POST, "/api/experiments/", Some(&rw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    cli.ok(&["chatbot", "archive", &other]);
    let list = app.get_json("/api/experiments/", &ro).await;
    assert_eq!(list["count"], 1);

    let keys: Value =
        serde_json::from_str(&cli.ok(&["key", "list", "--team", "acme", "--json"])).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(
        keys.to_string().find(&ro[9..]).is_none(),
        "secrets are never listed"
    );
    let prefix = ro.split('.').next().unwrap();
    cli.ok(&["key", "revoke", prefix]);
    assert_eq!(app.get("/api/experiments/", &ro).await.status(), 401);

    let (success, _, err) = cli.run(&["chatbot", "show", "00000000-0000-0000-0000-000000000000"]);
    assert!(!success);
    assert!(err.contains("no chatbot"), "{err}");
    let (success, _, err) = cli.run(&["key", "create", "--team", "nope"]);
    assert!(!success);
    assert!(err.contains("no team"), "{err}");
});

both_backends!(
    providers_and_one_node_chatbots_from_the_cli,
    async |app: &TestApp| {
        let cli = chatstudio(app);
        cli.ok(&["team", "create", "acme"]);
        let key = last_line(&cli.ok(&["key", "create", "--team", "acme", "--read-write"]));
        // The key comes from the environment, never the command line; it is stored sealed.
        let out = cli
            .command(&[
                "provider",
                "add",
                "--team",
                "acme",
                "--name",
                "oa",
                "--type",
                "openai",
                "--api-key-env",
                "CS_TEST_KEY",
                "--base-url",
                "http://127.0.0.1:9",
            ])
            .env("CS_TEST_KEY", "sk-from-env")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cli.ok(&[
            "provider", "add", "--team", "acme", "--name", "local", "--type", "builtin",
        ]);
        let listed = cli.ok(&["provider", "list", "--team", "acme", "--json"]);
        assert!(!listed.contains("sk-from-env"));
        let listed: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 2);
        let (success, _, err) = cli.run(&[
            "provider", "add", "--team", "acme", "--name", "x", "--type", "openai",
        ]);
        assert!(!success && err.contains("API key"), "{err}");

        let bot = last_line(&cli.ok(&[
            "chatbot",
            "create",
            "--team",
            "acme",
            "--name",
            "Helper",
            "--provider",
            "local",
            "--model",
            "echo",
            "--prompt",
            "Be kind to {participant_data.name}",
        ]));
        let (status, body) = app
            .post_json(
                &format!("/channels/api/{bot}/incoming_message"),
                &key,
                &serde_json::json!({"message": "hi"}),
            )
            .await;
        assert_eq!(
            (status, body["response"].as_str()),
            (200, Some("You said: hi"))
        );

        // A bad pipeline file fails with a message naming the problem.
        let err = apply_refused(
            &cli,
            "name: Bad\nconfig:\n  pipeline:\n    nodes:\n      - {id: start, type: start}\n      - {id: llm, type: llm, params: {provider: local, model: echo, prompt: 'Hi {unknown_var}'}}\n      - {id: end, type: end}\n    edges:\n      - {from: start, to: llm}\n      - {from: llm, to: end}\n",
        );
        assert!(err.contains("{unknown_var}"), "{err}");
        cli.ok(&["provider", "remove", "--team", "acme", "--name", "oa"]);
        let (success, _, _) = cli.run(&["provider", "remove", "--team", "acme", "--name", "oa"]);
        assert!(!success);
    }
);

both_backends!(widget_channels_from_the_cli, async |app: &TestApp| {
    let cli = chatstudio(app);
    cli.ok(&["team", "create", "acme"]);
    let bot = last_line(&cli.ok(&["chatbot", "create", "--team", "acme", "--name", "Helper"]));
    let key = last_line(&cli.ok(&[
        "channel",
        "add-widget",
        "--chatbot",
        &bot,
        "--domain",
        "example.com",
        "--domain",
        "*.example.org",
        "--auth-level",
        "embed-key",
    ]));
    assert!(key.starts_with("ek_"), "{key}");
    let list: Value =
        serde_json::from_str(&cli.ok(&["channel", "list", "--chatbot", &bot, "--json"])).unwrap();
    assert_eq!(
        list[0]["allowed_domains"],
        serde_json::json!(["example.com", "*.example.org"])
    );
    assert_eq!(list[0]["auth_level"], "embed-key");
    assert!(!list.to_string().contains(&key), "keys are shown once");
    let id = list[0]["id"].as_str().unwrap().to_string();
    let start = async |key: &str| {
        app.request(reqwest::Method::POST, "/api/chat/start/", None)
            .header("X-Embed-Key", key)
            .header("Origin", "https://example.com")
            .json(&serde_json::json!({"chatbot_id": bot}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(start(&key).await, 201);
    let new_key = last_line(&cli.ok(&["channel", "rotate-key", &id]));
    assert_eq!(start(&key).await, 401);
    assert_eq!(start(&new_key).await, 201);
    cli.ok(&[
        "channel",
        "disable",
        &id,
        "--message",
        "Closed for maintenance",
    ]);
    assert_eq!(start(&new_key).await, 403);
    cli.ok(&["channel", "enable", &id]);
    assert_eq!(start(&new_key).await, 201);
    cli.ok(&["channel", "remove", &id]);
    assert_eq!(start(&new_key).await, 401);
    let (success, _, err) = cli.run(&[
        "channel",
        "add-widget",
        "--chatbot",
        &bot,
        "--domain",
        "bad domain!",
    ]);
    assert!(!success && err.contains("invalid domain"), "{err}");
});

both_backends!(telegram_channels_from_the_cli, async |app: &TestApp| {
    let cli = chatstudio(app);
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/bot42:GOOD-token/getMe"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true, "result": {"id": 42, "is_bot": true, "first_name": "Helper", "username": "HelperBot"}})))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/bot42:BAD-token/getMe"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
        ))
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/bot42:GOOD-token/setWebhook"))
        .and(body_partial_json(
            serde_json::json!({"allowed_updates": ["message", "edited_message"]}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"ok": true, "result": true})),
        )
        .mount(&fake)
        .await;
    cli.ok(&["team", "create", "acme"]);
    let bot = last_line(&cli.ok(&["chatbot", "create", "--team", "acme", "--name", "Helper"]));
    let add = |token: &str| {
        cli.command(&[
            "--telegram-api-url",
            &fake.uri(),
            "channel",
            "add-telegram",
            "--chatbot",
            &bot,
            "--bot-token-env",
            "TG_TOKEN",
            "--public-url",
            "https://bots.example.org/",
        ])
        .env("TG_TOKEN", token)
        .output()
        .unwrap()
    };
    let out = add("42:BAD-token");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not accept the bot token") && !err.contains("BAD-token"),
        "{err}"
    );
    let out = add("42:GOOD-token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let channel_id = last_line(&String::from_utf8_lossy(&out.stdout));
    let hook = fake
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/setWebhook"))
        .unwrap();
    let body: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(
        body["url"],
        format!("https://bots.example.org/channels/telegram/{channel_id}")
    );
    let secret = body["secret_token"].as_str().unwrap().to_string();
    // The registered secret opens the webhook; the token is stored sealed.
    let r = app
        .client
        .post(app.url(&format!("/channels/telegram/{channel_id}")))
        .header("X-Telegram-Bot-Api-Secret-Token", &secret)
        .json(&serde_json::json!({"update_id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored = app
        .rows(
            "SELECT secret FROM channels WHERE platform = 'telegram'",
            &["s"],
        )
        .await;
    assert!(!stored[0]["s"].as_str().unwrap().contains("GOOD-token"));
});

both_backends!(whatsapp_numbers_from_the_cli, async |app: &TestApp| {
    let cli = chatstudio(app);
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/WABA7/phone_numbers"))
        .and(header("authorization", "Bearer sys-user-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [
            {"id": "1065403522", "display_phone_number": "+27 82 123 4567", "verified_name": "Clinic"}
        ]})))
        .mount(&fake)
        .await;
    cli.ok(&["team", "create", "acme"]);
    let bot = last_line(&cli.ok(&["chatbot", "create", "--team", "acme", "--name", "Helper"]));
    let env = [
        ("META_TOKEN", "sys-user-token"),
        ("META_SECRET", "app-secret-value"),
        ("META_VERIFY", "verify-me"),
    ];
    let add = |extra: &[&str]| {
        let mut args = vec![
            "messaging",
            "add",
            "--team",
            "acme",
            "--name",
            "meta",
            "--type",
            "meta",
            "--access-token-env",
            "META_TOKEN",
            "--app-secret-env",
            "META_SECRET",
            "--verify-token-env",
            "META_VERIFY",
        ];
        args.extend_from_slice(extra);
        cli.run_with_env(&env, &args)
    };
    let (ok, _, err) = add(&[]);
    assert!(!ok && err.contains("--business-id"), "{err}");
    let (ok, _, err) = add(&["--business-id", "WABA7", "--template-language", "pt_BR"]);
    assert!(ok, "{err}");
    let (ok, _, err) = add(&["--business-id", "WABA7"]);
    assert!(
        !ok && err.contains("already has a messaging provider"),
        "{err}"
    );
    let listed = cli.ok(&["messaging", "list", "--team", "acme"]);
    assert!(
        listed.contains("meta_cloud_api") && listed.contains("pt_BR"),
        "{listed}"
    );
    for secret in ["sys-user-token", "app-secret-value", "verify-me"] {
        assert!(!listed.contains(secret));
        let stored = app
            .rows("SELECT secret FROM messaging_providers", &["s"])
            .await;
        assert!(!stored[0]["s"].as_str().unwrap().contains(secret));
    }
    let connect = |number: &str| {
        cli.run(&[
            "--meta-api-url",
            &fake.uri(),
            "channel",
            "add-whatsapp",
            "--chatbot",
            &bot,
            "--provider",
            "meta",
            "--number",
            number,
            "--public-url",
            "https://bots.example.org",
        ])
    };
    // Another team's provider is not one this chatbot's team can name.
    cli.ok(&["team", "create", "other"]);
    let (ok, _, err) = cli.run_with_env(
        &env,
        &[
            "messaging",
            "add",
            "--team",
            "other",
            "--name",
            "theirs",
            "--type",
            "meta",
            "--business-id",
            "WABA7",
            "--access-token-env",
            "META_TOKEN",
            "--app-secret-env",
            "META_SECRET",
            "--verify-token-env",
            "META_VERIFY",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli.run(&[
        "--meta-api-url",
        &fake.uri(),
        "channel",
        "add-whatsapp",
        "--chatbot",
        &bot,
        "--provider",
        "theirs",
        "--number",
        "+27 82 123 4567",
    ]);
    assert!(!ok && err.contains("no messaging provider named"), "{err}");
    let (ok, _, err) = connect("+27 82 000 0000");
    assert!(
        !ok && err.contains("not a number of WhatsApp Business Account WABA7"),
        "{err}"
    );
    let (ok, _, err) = connect("082 123");
    assert!(!ok && err.contains("international format"), "{err}");
    let (ok, out, err) = connect("+27 82 123 4567");
    assert!(ok, "{err}");
    assert!(
        out.contains("https://bots.example.org/channels/whatsapp/meta/incoming_message"),
        "{out}"
    );
    assert_eq!(
        app.rows(
            "SELECT platform, address, name FROM channels WHERE platform = 'whatsapp'",
            &["platform", "address", "name"]
        )
        .await,
        vec![
            serde_json::json!({"platform": "whatsapp", "address": "1065403522", "name": "WhatsApp +27821234567"})
        ]
    );
    let (ok, _, err) = connect("+27821234567");
    assert!(!ok && err.contains("already connected"), "{err}");
    // A provider a channel uses stays until the channel goes.
    let (ok, _, err) = cli.run(&["messaging", "remove", "--team", "acme", "--name", "meta"]);
    assert!(!ok && err.contains("still uses"), "{err}");
    let channel = last_line(&out);
    cli.ok(&["channel", "remove", &channel]);
    cli.ok(&["messaging", "remove", "--team", "acme", "--name", "meta"]);
});

/// `serve` on an empty database seeds the demo team and prints its key once;
/// after a SIGKILL it starts again on the same database without a banner.
async fn serve_seeds_a_fresh_database_once(backend: Backend) {
    let Some(bin) = Binary::fresh(env!("CARGO_BIN_EXE_chatstudio"), backend).await else {
        return;
    };
    let server = bin.serve(&[]).await;
    let key = server.api_key().expect("first start prints a key");
    let bot = server
        .demo_chatbot()
        .expect("first start names the chatbot");
    let client = reqwest::Client::new();
    let talk = async |base: String| {
        let r = client
            .post(format!("{base}/channels/api/{bot}/incoming_message"))
            .header("X-Api-Key", &key)
            .json(&serde_json::json!({"message": "Hello!"}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (status, body) = talk(server.base()).await;
    assert_eq!(status, 200, "{body}");
    // The banner's console sign-in opens the demo team's chatbots.
    let (email, password) = server
        .console_login()
        .expect("first start prints a console sign-in");
    let console = testkit::console::ConsoleClient::new(&server.base());
    let signed = console.sign_in(&email, &password).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let home = console.get("/").await;
    assert_eq!(home.location(), "/a/demo/chatbots/");
    assert!(
        console
            .get("/a/demo/chatbots/")
            .await
            .body
            .contains("Demo bot")
    );
    let server = server.restart().await;
    assert_eq!(server.api_key(), None, "the banner is shown once");
    assert_eq!(server.console_login(), None, "the password is shown once");
    let (status, body) = talk(server.base()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_seeds_a_fresh_sqlite_database_once() {
    serve_seeds_a_fresh_database_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_seeds_a_fresh_postgres_database_once() {
    serve_seeds_a_fresh_database_once(Backend::Postgres).await;
}

fn fixture(name: &str) -> String {
    format!(
        "{}/../domain/src/pipeline/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

both_backends!(
    pipelines_imported_from_the_original_and_tested_without_saving,
    async |app: &TestApp| {
        let cli = chatstudio(app);
        cli.ok(&["team", "create", "acme"]);
        cli.ok(&[
            "provider", "add", "--team", "acme", "--name", "local", "--type", "builtin",
        ]);
        // Everything that cannot be mapped is named, by node; nothing is created.
        let (ok, _, err) = cli.run(&[
            "chatbot",
            "import",
            "--team",
            "acme",
            "--file",
            &fixture("agent_bot.json"),
        ]);
        assert!(!ok);
        assert!(err.contains("node \"agent\": tools"), "{err}");
        assert!(
            err.contains("node \"helper\": OpenAI Assistant nodes"),
            "{err}"
        );
        assert!(err.contains("--provider"), "{err}");
        let (ok, _, err) = cli.run(&[
            "chatbot",
            "import",
            "--team",
            "acme",
            "--file",
            &fixture("router_bot.json"),
            "--provider",
            "missing",
            "--model",
            "echo",
        ]);
        assert!(
            !ok && err.contains("provider \"missing\" does not exist"),
            "{err}"
        );
        let listed = cli.ok(&["chatbot", "list", "--team", "acme", "--json"]);
        assert_eq!(listed.trim(), "[]");

        let out = cli.ok(&[
            "chatbot",
            "import",
            "--team",
            "acme",
            "--file",
            &fixture("router_bot.json"),
            "--provider",
            "local",
            "--model",
            "echo",
        ]);
        assert!(out.contains("imported chatbot Support triage"), "{out}");
        let id = last_line(&out);
        let out = cli.ok(&["chatbot", "test", &id, "--message", "a billing question"]);
        assert!(
            out.contains("path: start → triage → billing → wrap"),
            "{out}"
        );
        assert!(
            out.contains("[triage] router") && out.contains("→ route BILLING"),
            "{out}"
        );
        assert!(
            out.trim_end()
                .ends_with("reply:\nYou said: a billing question (a billing question)"),
            "{out}"
        );
        let v: Value = serde_json::from_str(&cli.ok(&[
            "chatbot",
            "test",
            &id,
            "--message",
            "something else",
            "--json",
        ]))
        .unwrap();
        assert_eq!(
            v["path"],
            serde_json::json!(["start", "triage", "other", "wrap"])
        );
        assert_eq!(v["reply_tags"], serde_json::json!(["OTHER"]));
        // Running as a participant the team does not have is refused, by name.
        let (ok, _, err) = cli.run(&[
            "chatbot",
            "test",
            &id,
            "--message",
            "hi",
            "--participant",
            "nobody@example.org",
        ]);
        assert!(!ok);
        assert!(
            err.contains("no participant \"nobody@example.org\""),
            "{err}"
        );
        // Nothing was saved.
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM traces").await, 0);

        // A chatbot file with a bad pipeline: the node and the field are named.
        let err = apply_refused(
            &cli,
            "name: Bad\nconfig:\n  pipeline:\n    nodes:\n      - {id: s, type: start}\n      - {id: r, type: static_router, params: {route_key: x, keywords: [a], defualt_keyword_index: 0}}\n      - {id: e, type: end}\n    edges:\n      - {from: s, to: r}\n      - {from: r, to: e, handle: output_0}\n",
        );
        assert!(
            err.contains("node \"r\" (static_router): params.defualt_keyword_index: unknown field"),
            "{err}"
        );
    }
);

both_backends!(
    custom_actions_from_the_cli_and_chatbot_files,
    async |app: &TestApp| {
        use wiremock::matchers::{header, method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/health"))
            .and(header("authorization", "Bearer tok-9"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&api)
            .await;
        let cli = chatstudio(app);
        cli.ok(&["team", "create", "acme"]);
        let schema = app.data_dir.path().join("weather.yaml");
        std::fs::write(
        &schema,
        "openapi: 3.0.0\ninfo: {title: Weather, version: '1'}\npaths:\n  /forecast/{city}:\n    get:\n      operationId: get_forecast\n      parameters: [{name: city, in: path, required: true, schema: {type: string}}]\n  /upload:\n    post:\n      operationId: upload\n      requestBody: {content: {text/csv: {schema: {type: string}}}}\n",
    )
    .unwrap();
        let uri = api.uri();
        let add = [
            "action",
            "add",
            "--team",
            "acme",
            "--name",
            "weather",
            "--server-url",
            &uri,
            "--schema",
            schema.to_str().unwrap(),
            "--auth",
            "bearer",
            "--secret-env",
            "WEATHER_TOKEN",
            "--health-path",
            "/health",
        ];
        let (ok, out, err) = cli.run_with_env(&[("WEATHER_TOKEN", "tok-9")], &add);
        assert!(ok, "{err}");
        assert!(
            out.contains("skipped POST /upload: only application/json"),
            "{out}"
        );
        assert!(out.contains("with operations: get_forecast"), "{out}");
        // A second action of the name, or one whose auth has no secret, is refused.
        let (ok, _, err) = cli.run_with_env(&[("WEATHER_TOKEN", "x")], &add);
        assert!(!ok && err.contains("already has an action named"), "{err}");
        let mut no_secret = add.to_vec();
        no_secret[5] = "w2";
        no_secret.truncate(12);
        let (ok, _, err) = cli.run(&no_secret);
        assert!(!ok && err.contains("bearer auth needs a secret"), "{err}");

        let listed = cli.ok(&["action", "list", "--team", "acme", "--json"]);
        assert!(
            !listed.contains("tok-9"),
            "secrets are never listed: {listed}"
        );
        let l: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(l[0]["has_secret"], true);
        assert_eq!(l[0]["health_status"], "unknown");
        let stored = app.rows("SELECT secret FROM custom_actions", &["s"]).await;
        assert!(!stored[0]["s"].as_str().unwrap().contains("tok-9"));

        // The check goes through the outbound policy: 127.0.0.1 must be allowed.
        let (ok, _, err) = cli.run(&["action", "check", "--team", "acme", "--name", "weather"]);
        assert!(!ok && err.contains("private address"), "{err}");
        let l: Value =
            serde_json::from_str(&cli.ok(&["action", "list", "--team", "acme", "--json"])).unwrap();
        assert_eq!(l[0]["health_status"], "down");
        let out = cli.ok(&[
            "action",
            "check",
            "--team",
            "acme",
            "--name",
            "weather",
            "--outbound-allow",
            "127.0.0.1",
        ]);
        assert!(out.contains("weather is up (HTTP 200)"), "{out}");
        let l: Value =
            serde_json::from_str(&cli.ok(&["action", "list", "--team", "acme", "--json"])).unwrap();
        assert_eq!(l[0]["health_status"], "up");
        assert!(l[0]["last_health_check"].is_string());

        // A chatbot file declares its own action; its secret comes from the environment.
        cli.ok(&[
            "provider", "add", "--team", "acme", "--name", "local", "--type", "builtin",
        ]);
        let bot = |refs: &str, auth: &str| {
            format!(
                "name: Forecaster\nactions:\n  - name: forecasts\n    server_url: {uri}\n    schema_file: weather.yaml\n    auth: {auth}\nconfig:\n  pipeline:\n    nodes:\n      - {{id: start, type: start}}\n      - {{id: llm, type: llm, params: {{provider: local, model: echo, custom_actions: [{refs}]}}}}\n      - {{id: end, type: end}}\n    edges:\n      - {{from: start, to: llm}}\n      - {{from: llm, to: end}}\n"
            )
        };
        let key = [("FORECAST_KEY", "fk")];
        // Refused together: an unknown auth setting, then a pipeline naming a missing operation.
        let (ok, _, err) = cli.apply(
            "acme",
            "forecaster.yaml",
            &bot("forecasts:get_forecast", "{type: api_key, token: x}"),
        );
        assert!(!ok && err.contains("unknown field `token`"), "{err}");
        let (ok, _, err) = cli.apply_with_env(
            &key,
            "acme",
            "forecaster.yaml",
            &bot(
                "forecasts:nope",
                "{type: api_key, secret_env: FORECAST_KEY}",
            ),
        );
        assert!(!ok && err.contains("has no operation \"nope\""), "{err}");
        let names = app
            .rows("SELECT name FROM custom_actions ORDER BY name", &["n"])
            .await;
        assert_eq!(
            names.len(),
            1,
            "nothing of a refused file is kept: {names:?}"
        );
        let (ok, out, err) = cli.apply_with_env(
            &key,
            "acme",
            "forecaster.yaml",
            &bot(
                "forecasts:get_forecast",
                "{type: api_key, secret_env: FORECAST_KEY}",
            ),
        );
        assert!(ok, "{err}");
        assert!(out.starts_with("created chatbot"), "{out}");
        // Applying again without the variable keeps the stored secret.
        cli.apply_ok(
            "acme",
            "forecaster.yaml",
            &bot("forecasts:get_forecast", "{type: api_key}"),
        );
        let l: Value =
            serde_json::from_str(&cli.ok(&["action", "list", "--team", "acme", "--json"])).unwrap();
        assert_eq!(l[0]["name"], "forecasts");
        assert_eq!(l[0]["auth_header"], "X-Api-Key");
        assert_eq!(l[0]["has_secret"], true);

        // An action the chatbot uses stays; an unused one goes.
        let (ok, _, err) = cli.run(&["action", "remove", "--team", "acme", "--name", "forecasts"]);
        assert!(!ok && err.contains("uses the action"), "{err}");
        cli.ok(&["action", "remove", "--team", "acme", "--name", "weather"]);
        let l: Value =
            serde_json::from_str(&cli.ok(&["action", "list", "--team", "acme", "--json"])).unwrap();
        assert_eq!(l.as_array().unwrap().len(), 1);
    }
);

/// Found by an attack: made-up session ids and embed keys, refused, each
/// kept a rate-limit entry as large as itself (2,000 took 126 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_floods_of_huge_ids_leave_memory_flat() {
    let bin = Binary::fresh(env!("CARGO_BIN_EXE_chatstudio"), Backend::Sqlite)
        .await
        .unwrap();
    // A limit the flood never reaches, so every request is really handled.
    let server = bin.serve(&["--chat-rate-limit", "1000000/5m"]).await;
    let client = testkit::http_client();
    let flood = async |n: usize, salt: &str| {
        for i in 0..n {
            let huge = format!("{salt}{i}{}", "z".repeat(60_000));
            let r = client
                .get(server.url(&format!("/api/chat/{huge}/poll/")))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error(), "{}", r.status());
            let r = client
                .post(server.url("/api/chat/start/"))
                .header("X-Embed-Key", &huge)
                .header("Origin", "https://example.org")
                .json(&serde_json::json!({"chatbot_id": uuid::Uuid::nil()}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error(), "{}", r.status());
        }
    };
    // Warm up the allocator and the connection, then measure a flood six times larger.
    flood(100, "w").await;
    let before = server.rss_kib().unwrap();
    flood(600, "f").await;
    let after = server.rss_kib().unwrap();
    eprintln!("RSS {before} KiB before, {after} KiB after 1,200 refused requests");
    assert!(
        after < before + 10 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

both_backends!(console_users_from_the_cli, async |app: &TestApp| {
    let cli = chatstudio(app);
    cli.ok(&["team", "create", "acme"]);
    // The password from an environment variable, never the command line.
    let (ok, out, err) = cli.run_with_env(
        &[("CHATSTUDIO_PASSWORD", "correct horse battery")],
        &[
            "user",
            "create",
            "--email",
            "Ada@Acme.org",
            "--team",
            "acme",
            "--role",
            "chatbot_admin",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("added Ada@Acme.org to team acme as chatbot_admin"),
        "{out}"
    );
    let c = app.console();
    assert_eq!(
        c.sign_in("ada@acme.org", "correct horse battery")
            .await
            .status,
        303
    );

    // A generated password, shown once; a short one and an unknown role refused.
    let out = cli.ok(&[
        "user",
        "create",
        "--email",
        "bo@acme.org",
        "--team",
        "acme",
        "--role",
        "chat_viewer",
        "--generate-password",
        "--json",
    ]);
    let made: Value = serde_json::from_str(&out).unwrap();
    let password = made["password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 20);
    assert_eq!(
        app.console().sign_in("bo@acme.org", &password).await.status,
        303
    );
    let (ok, _, err) = cli.run_with_env(
        &[("CHATSTUDIO_PASSWORD", "short")],
        &[
            "user",
            "create",
            "--email",
            "cy@acme.org",
            "--team",
            "acme",
            "--role",
            "chat_viewer",
        ],
    );
    assert!(!ok && err.contains("too short"), "{err}");
    let (ok, _, err) = cli.run(&[
        "user",
        "create",
        "--email",
        "cy@acme.org",
        "--team",
        "acme",
        "--role",
        "wizard",
        "--generate-password",
    ]);
    assert!(!ok && err.contains("unknown role"), "{err}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users WHERE email = 'cy@acme.org'")
            .await,
        0
    );

    let list: Value =
        serde_json::from_str(&cli.ok(&["user", "list", "--team", "acme", "--json"])).unwrap();
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["Ada@Acme.org", "bo@acme.org", "owner@acme.chatstudio.local"]
    );
    assert!(
        !cli.ok(&["user", "list", "--team", "acme", "--json"])
            .contains("argon2"),
        "no hashes listed"
    );

    // A new password ends the open sign-ins.
    let (ok, _, err) = cli.run_with_env(
        &[("CHATSTUDIO_PASSWORD", "another long password")],
        &["user", "set-password", "--email", "ada@acme.org"],
    );
    assert!(ok, "{err}");
    assert_eq!(c.get("/a/acme/chatbots/").await.status, 303);
    assert_eq!(
        app.console()
            .sign_in("ada@acme.org", "another long password")
            .await
            .status,
        303
    );

    cli.ok(&["user", "remove", "--email", "bo@acme.org", "--team", "acme"]);
    let (ok, _, err) = cli.run(&[
        "user",
        "remove",
        "--email",
        "owner@acme.chatstudio.local",
        "--team",
        "acme",
    ]);
    assert!(!ok && err.contains("at least one owner"), "{err}");
    let (ok, _, err) = cli.run(&[
        "user",
        "remove",
        "--email",
        "nobody@acme.org",
        "--team",
        "acme",
    ]);
    assert!(!ok && err.contains("not a member"), "{err}");
});

/// A form body as an OAuth client sends it.
fn form(rb: reqwest::RequestBuilder, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    rb.header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

/// `SELECT COUNT(*) FROM oauth_apps`.
async fn oauth_apps(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM oauth_apps").await
}

both_backends!(oauth_apps_from_the_cli, async |app: &TestApp| {
    let cli = chatstudio(app);
    cli.ok(&["team", "create", "acme"]);
    cli.ok(&["team", "create", "rival"]);
    let bot = last_line(&cli.ok(&["chatbot", "create", "--team", "acme", "--name", "Helper"]));
    let rival_bot =
        last_line(&cli.ok(&["chatbot", "create", "--team", "rival", "--name", "Theirs"]));

    // A user-facing application: `<client_id> <client_secret>` alone on the last line.
    let out = cli.ok(&[
        "oauth-app",
        "create",
        "--team",
        "acme",
        "--name",
        "Dashboard",
        "--kind",
        "user",
        "--redirect-uri",
        "https://dash.example.org/callback",
        "--redirect-uri",
        "http://localhost:8080/cb",
    ]);
    assert!(out.contains("shown once"), "{out}");
    let last = last_line(&out);
    let parts: Vec<&str> = last.split(' ').collect();
    assert_eq!(parts.len(), 2, "{last}");
    let (user_id, user_secret) = (parts[0].to_string(), parts[1].to_string());
    assert!(user_id.len() >= 32 && user_secret.len() >= 32, "{last}");
    assert!(user_id.chars().all(|c| c.is_ascii_alphanumeric()), "{last}");

    // A machine application for one chatbot, whose secret gets a token.
    let last = last_line(&cli.ok(&[
        "oauth-app",
        "create",
        "--team",
        "acme",
        "--name",
        "Backend",
        "--kind",
        "machine",
        "--chatbot",
        &bot,
    ]));
    let (machine_id, machine_secret) = last.split_once(' ').unwrap();
    let token = form(
        app.client.post(app.url("/o/token/")),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", machine_id),
            ("client_secret", machine_secret),
            ("scope", "chat:start"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap().to_string();

    // A public client: no secret, `-` in its place; PKCE stays required.
    let last = last_line(&cli.ok(&[
        "oauth-app",
        "create",
        "--team",
        "acme",
        "--name",
        "Mobile",
        "--kind",
        "user",
        "--public",
        "--no-pkce",
        "--redirect-uri",
        "https://app.example.org/cb",
    ]));
    let (public_id, dash) = last.split_once(' ').unwrap();
    assert_eq!(dash, "-");

    // The list: every application, no secret anywhere.
    let text = cli.ok(&["oauth-app", "list", "--team", "acme"]);
    let rows: Vec<&str> = text.trim_end().lines().collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert_eq!(
        rows[0],
        format!(
            "{user_id}\tDashboard\tuser\tconfidential\thttps://dash.example.org/callback,http://localhost:8080/cb\t-"
        )
    );
    assert_eq!(
        rows[1],
        format!("{machine_id}\tBackend\tmachine\tconfidential\t-\t{bot}")
    );
    assert_eq!(
        rows[2],
        format!("{public_id}\tMobile\tuser\tpublic\thttps://app.example.org/cb\t-")
    );
    let json = cli.ok(&["oauth-app", "list", "--team", "acme", "--json"]);
    for shown in [&text, &json] {
        assert!(!shown.contains(&user_secret), "{shown}");
        assert!(!shown.contains(machine_secret), "{shown}");
    }
    let listed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed[2]["confidential"], false);
    assert_eq!(listed[2]["pkce_required"], true, "public clients use PKCE");
    assert_eq!(listed[1]["allowed_chatbots"], serde_json::json!([bot]));
    assert!(
        cli.ok(&["oauth-app", "list", "--team", "rival"])
            .trim()
            .is_empty()
    );

    // Refusals: one clear line, a non-zero exit, nothing written.
    let before = oauth_apps(app).await;
    let refused = |args: &[&str], says: &str| {
        let mut all = vec!["oauth-app", "create", "--team", "acme", "--name", "Bad"];
        all.extend_from_slice(args);
        let (ok, out, err) = cli.run(&all);
        assert!(!ok, "{all:?} succeeded: {out}");
        assert!(err.starts_with("error:") && err.contains(says), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    };
    refused(
        &[
            "--kind",
            "machine",
            "--redirect-uri",
            "https://x.example.org/cb",
        ],
        "a machine application has no redirect URIs",
    );
    refused(&["--kind", "user"], "needs at least one redirect URI");
    refused(
        &[
            "--kind",
            "user",
            "--redirect-uri",
            "http://evil.example.org/cb",
        ],
        "https",
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    refused(
        &["--kind", "machine", "--chatbot", &unknown],
        &format!("no chatbot {unknown} in team acme"),
    );
    refused(
        &["--kind", "machine", "--chatbot", &rival_bot],
        &format!("no chatbot {rival_bot} in team acme"),
    );
    refused(&["--kind", "machine", "--public"], "cannot be public");
    let (ok, _, err) = cli.run(&[
        "oauth-app",
        "create",
        "--team",
        "nobody",
        "--name",
        "X",
        "--kind",
        "machine",
    ]);
    assert!(!ok && err.starts_with("error:"), "{err}");
    assert_eq!(oauth_apps(app).await, before);

    // Removing: another team's client is not found, and the tokens go with the app.
    let (ok, _, err) = cli.run(&["oauth-app", "remove", "--team", "rival", machine_id]);
    assert!(!ok && err.contains("no OAuth application"), "{err}");
    let introspect = async || {
        let r = form(
            app.client
                .post(app.url("/o/introspect/"))
                .basic_auth(&user_id, Some(&user_secret)),
            &[("token", access.as_str())],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["active"].clone()
    };
    assert_eq!(introspect().await, true);
    let out = cli.ok(&["oauth-app", "remove", "--team", "acme", machine_id]);
    assert!(out.contains("removed application \"Backend\""), "{out}");
    assert_eq!(oauth_apps(app).await, before - 1);
    assert_eq!(introspect().await, false);
    let (ok, _, err) = cli.run(&["oauth-app", "remove", "--team", "acme", machine_id]);
    assert!(!ok && err.contains("no OAuth application"), "{err}");
});

both_backends!(oauth_widget_channels_from_the_cli, async |app: &TestApp| {
    let cli = chatstudio(app);
    cli.ok(&["team", "create", "acme"]);
    let bot = last_line(&cli.ok(&["chatbot", "create", "--team", "acme", "--name", "Helper"]));
    // An embed-key channel still needs a domain.
    let (ok, _, err) = cli.run(&["channel", "add-widget", "--chatbot", &bot]);
    assert!(!ok && err.contains("at least one allowed domain"), "{err}");
    let (ok, _, err) = cli.run(&[
        "channel",
        "add-widget",
        "--chatbot",
        &bot,
        "--credential-mode",
        "oauth",
        "--auth-level",
        "embed-key",
    ]);
    assert!(!ok && err.contains("session token"), "{err}");
    let (ok, _, err) = cli.run(&[
        "channel",
        "add-widget",
        "--chatbot",
        &bot,
        "--credential-mode",
        "magic",
    ]);
    assert!(!ok && err.contains("magic"), "{err}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM channels WHERE platform = 'embedded_widget'")
            .await,
        0
    );

    // A server-only oauth channel: no domain, the channel id on the last line.
    let out = cli.ok(&[
        "channel",
        "add-widget",
        "--chatbot",
        &bot,
        "--credential-mode",
        "oauth",
    ]);
    assert!(out.contains("servers only"), "{out}");
    let id = last_line(&out);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{out}");
    let list: Value =
        serde_json::from_str(&cli.ok(&["channel", "list", "--chatbot", &bot, "--json"])).unwrap();
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["credential_mode"], "oauth");
    assert_eq!(list[0]["auth_level"], "session-token");
    assert_eq!(list[0]["allowed_domains"], serde_json::json!([]));
    let text = cli.ok(&["channel", "list", "--chatbot", &bot]);
    assert!(
        text.starts_with(&format!("{id}\toauth\tsession-token\tenabled\t")),
        "{text}"
    );

    // A machine application's token starts a chat through it, from a server.
    let last = last_line(&cli.ok(&[
        "oauth-app",
        "create",
        "--team",
        "acme",
        "--name",
        "Backend",
        "--kind",
        "machine",
        "--chatbot",
        &bot,
    ]));
    let (client_id, secret) = last.split_once(' ').unwrap();
    let token: Value = form(
        app.client
            .post(app.url("/o/token/"))
            .basic_auth(client_id, Some(secret)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "chat:start"),
        ],
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let start = async |origin: Option<&str>| {
        let mut rb = app
            .client
            .post(app.url("/api/chat/start/"))
            .bearer_auth(access)
            .json(&serde_json::json!({"chatbot_id": bot}));
        if let Some(o) = origin {
            rb = rb.header("Origin", o);
        }
        rb.send().await.unwrap().status().as_u16()
    };
    assert_eq!(start(None).await, 201);
    assert_eq!(start(Some("https://www.example.org")).await, 401);

    // The default mode is unchanged: an embed key on the last line.
    let key = last_line(&cli.ok(&[
        "channel",
        "add-widget",
        "--chatbot",
        &bot,
        "--domain",
        "example.org",
    ]));
    assert!(key.starts_with("ek_"), "{key}");
});
