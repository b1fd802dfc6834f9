//! OAuth2 for API v1: the code flow through the consent page with PKCE,
//! the token endpoint's refusals, refresh rotation with reuse detection,
//! revocation, introspection, client credentials for widget chats, and the
//! contract's scopes on every operation.

use chatstudio_testkit::console::ConsoleClient;
use chatstudio_testkit::{TestApp, TestTeam, both_backends, status_json};
use domain::channels::widget::{AuthLevel, CredentialMode};
use domain::oauth::{AppKind, NewApp};
use domain::teams::Role;
use serde_json::{Value, json};
use uuid::Uuid;

/// RFC 7636 Appendix B's verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

struct Client {
    id: String,
    secret: Option<String>,
}

async fn register(app: &TestApp, team: &TestTeam, new: NewApp) -> Client {
    let (a, secret) = domain::oauth::apps::create(&app.domain, team.id, None, new)
        .await
        .unwrap();
    Client {
        id: a.client_id,
        secret,
    }
}

fn user_app(public: bool, pkce_required: bool) -> NewApp {
    NewApp {
        name: "Reporting dashboard".into(),
        kind: AppKind::User,
        public,
        redirect_uris: vec![REDIRECT.into(), "https://dash.example.org/cb".into()],
        chatbots: vec![],
        pkce_required,
    }
}

fn machine_app(chatbots: Vec<Uuid>) -> NewApp {
    NewApp {
        name: "Clinic site".into(),
        kind: AppKind::Machine,
        public: false,
        redirect_uris: vec![],
        chatbots,
        pkce_required: true,
    }
}

fn authorize_path(client: &Client, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "st-42");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("/o/authorize/?{}", q.finish())
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The consent form's hidden fields.
fn hidden_fields(body: &str) -> Vec<(String, String)> {
    body.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.split_once("value=\"")?.1.split_once('"')?.0;
            Some((name.to_string(), unescape(value)))
        })
        .collect()
}

/// Opens the consent page and answers it; the redirect's query.
async fn consent(c: &ConsoleClient, path: &str, allow: bool) -> Vec<(String, String)> {
    let page = c.get(path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut fields = hidden_fields(&page.body);
    if allow {
        fields.push(("allow".into(), "1".into()));
    }
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = c.post("/o/authorize/", &pairs).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    redirect_query(answer.location())
}

fn redirect_query(location: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(location).unwrap();
    assert_eq!(
        format!("{}://{}{}", url.scheme(), url.authority(), url.path()),
        REDIRECT
    );
    url.query_pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A token-endpoint request with the client's secret in HTTP Basic.
async fn token(app: &TestApp, client: &Client, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = form.to_vec();
    if client.secret.is_none() {
        all.push(("client_id", client.id.as_str()));
    }
    let mut rb = app
        .client
        .post(app.url("/o/token/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&all)
                .finish(),
        );
    if let Some(s) = &client.secret {
        rb = rb.basic_auth(&client.id, Some(s));
    }
    status_json(rb).await
}

/// Redeems a code at the token endpoint.
async fn redeem(
    app: &TestApp,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token(app, client, &form).await
}

async fn endpoint(
    app: &TestApp,
    path: &str,
    client: &Client,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut all = vec![("client_id", client.id.as_str())];
    if let Some(s) = &client.secret {
        all.push(("client_secret", s.as_str()));
    }
    all.extend_from_slice(form);
    status_json(
        app.client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&all)
                    .finish(),
            ),
    )
    .await
}

/// Runs the code flow for a signed-in chatbot admin; the token response.
async fn code_flow(app: &TestApp, c: &ConsoleClient, client: &Client, scope: &str) -> Value {
    let q = consent(
        c,
        &authorize_path(
            client,
            &[
                ("scope", scope),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        ),
        true,
    )
    .await;
    assert_eq!(param(&q, "state"), Some("st-42"));
    let code = param(&q, "code").unwrap().to_string();
    let (s, body) = redeem(app, client, &code, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(s, 200, "{body}");
    let mut body = body;
    body["code"] = Value::from(code);
    body
}

async fn bearer_get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    status_json(app.client.get(app.url(path)).bearer_auth(token)).await
}

both_backends!(
    the_code_flow_with_pkce_gives_a_token_that_acts_for_its_user,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let client = register(app, &team, user_app(false, true)).await;
        let c = app.signed_in(&team, Role::ChatbotAdmin).await;

        // Signed out, the consent page sends the visitor to sign in and back.
        let path = authorize_path(
            &client,
            &[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        );
        let out = app.console().get(&path).await;
        assert_eq!(out.status, 303);
        assert!(
            out.location().starts_with("/login/?next=/o/authorize/%3F"),
            "{}",
            out.location()
        );

        let page = c.get(&path).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Reporting dashboard"));
        assert!(page.body.contains("List and Read Sessions"));

        let body = code_flow(app, &c, &client, "chatbots:read sessions:read").await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 36000);
        assert_eq!(body["scope"], "chatbots:read sessions:read");
        let access = body["access_token"].as_str().unwrap();
        assert!(body["refresh_token"].as_str().is_some());
        assert_eq!(
            app.scalar(
                "SELECT COUNT(*) FROM oauth_tokens WHERE token_hash LIKE '%' AND kind = 'access'"
            )
            .await,
            1
        );
        // Only hashes are stored.
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM oauth_tokens WHERE token_hash = '{access}'"
            ))
            .await,
            0
        );

        let (s, list) = bearer_get(app, "/api/experiments/", access).await;
        assert_eq!(s, 200, "{list}");
        assert_eq!(list["results"][0]["id"], bot.to_string());
        let (s, _) = bearer_get(app, "/api/sessions/", access).await;
        assert_eq!(s, 200);
        // A scope it was not given.
        let r = app
            .client
            .get(app.url("/api/participants"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"api\",error=\"insufficient_scope\",scope=\"participants:read\""
        );
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"detail": "You do not have permission to perform this action."})
        );

        // The code is single use: a second redemption fails and revokes what it gave.
        let code = body["code"].as_str().unwrap();
        let (s, again) = redeem(app, &client, code, REDIRECT, Some(VERIFIER)).await;
        assert_eq!(s, 400);
        assert_eq!(again["error"], "invalid_grant");
        let r = app
            .client
            .get(app.url("/api/experiments/"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"api\",error=\"invalid_token\",error_description=\"The access token is invalid.\""
        );
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"detail": "Invalid token."})
        );

        // Denying sends access_denied back, with the state.
        let q = consent(
            &c,
            &authorize_path(
                &client,
                &[
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "S256"),
                ],
            ),
            false,
        )
        .await;
        assert_eq!(param(&q, "error"), Some("access_denied"));
        assert_eq!(param(&q, "state"), Some("st-42"));
        assert_eq!(param(&q, "code"), None);
    }
);

both_backends!(pkce_is_enforced, async |app: &TestApp| {
    let team = app.team("a").await;
    let client = register(app, &team, user_app(false, true)).await;
    let public = register(app, &team, user_app(true, false)).await;
    let lax = register(app, &team, user_app(false, false)).await;
    let c = app.signed_in(&team, Role::ChatViewer).await;

    // No challenge, or a plain one, when S256 is required: refused at the redirect URI.
    for (who, extra) in [
        (&client, vec![]),
        (
            &client,
            vec![
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ),
        (&client, vec![("code_challenge", VERIFIER)]),
        (&public, vec![]),
        (
            &public,
            vec![
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ),
    ] {
        let p = c.get(&authorize_path(who, &extra)).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let q = redirect_query(p.location());
        assert_eq!(param(&q, "error"), Some("invalid_request"), "{extra:?}");
        assert_eq!(param(&q, "state"), Some("st-42"));
    }

    // A missing or wrong verifier fails the exchange.
    let s256 = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for verifier in [
        None,
        Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"),
        Some("short"),
    ] {
        let q = consent(&c, &authorize_path(&client, &s256), true).await;
        let code = param(&q, "code").unwrap().to_string();
        let (s, body) = redeem(app, &client, &code, REDIRECT, verifier).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{verifier:?}: {body}"
        );
    }

    // A public client proves itself with the verifier alone.
    let q = consent(&c, &authorize_path(&public, &s256), true).await;
    let code = param(&q, "code").unwrap().to_string();
    let (s, body) = redeem(app, &public, &code, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(s, 200, "{body}");

    // A confidential client registered without the requirement may use plain or none.
    let q = consent(
        &c,
        &authorize_path(
            &lax,
            &[
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ),
        true,
    )
    .await;
    let code = param(&q, "code").unwrap().to_string();
    let (s, _) = redeem(app, &lax, &code, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(s, 200);
    let q = consent(&c, &authorize_path(&lax, &[]), true).await;
    let code = param(&q, "code").unwrap().to_string();
    let (s, _) = redeem(app, &lax, &code, REDIRECT, None).await;
    assert_eq!(s, 200);
});

both_backends!(
    redirect_uris_and_clients_are_checked,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let other = app.team("b").await;
        let client = register(app, &team, user_app(false, true)).await;
        let c = app.signed_in(&team, Role::ChatbotAdmin).await;
        let s256 = [
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];

        // An unregistered redirect URI, or an unknown client: a page, never a redirect.
        let bad = authorize_path(&client, &s256).replace("127.0.0.1%3A9", "evil.example.org");
        let p = c.get(&bad).await;
        assert_eq!(p.status, 400);
        assert!(p.headers.get("location").is_none());
        assert!(p.body.contains("not one registered"), "{}", p.body);
        let p = c
            .get(&authorize_path(
                &Client {
                    id: "nobody".into(),
                    secret: None,
                },
                &s256,
            ))
            .await;
        assert_eq!(p.status, 400);
        assert!(p.headers.get("location").is_none());

        // The exchange must name the same redirect URI.
        let q = consent(&c, &authorize_path(&client, &s256), true).await;
        let code = param(&q, "code").unwrap().to_string();
        let (s, body) = redeem(
            app,
            &client,
            &code,
            "https://dash.example.org/cb",
            Some(VERIFIER),
        )
        .await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

        // Wrong secrets and unknown grant types, as RFC 6749 §5.2 answers them.
        let wrong = Client {
            id: client.id.clone(),
            secret: Some("not-the-secret".into()),
        };
        let r = app
            .client
            .post(app.url("/o/token/"))
            .basic_auth(&wrong.id, wrong.secret.as_ref())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"oauth\"");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
        let (s, body) = token(app, &client, &[("grant_type", "password")]).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("unsupported_grant_type"))
        );
        let (s, body) = token(app, &client, &[("grant_type", "client_credentials")]).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("unauthorized_client"))
        );
        let (s, body) = token(app, &client, &[]).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));

        // A member of another team is refused at the redirect URI.
        let outsider = app.signed_in(&other, Role::Owner).await;
        let p = outsider.get(&authorize_path(&client, &s256)).await;
        assert_eq!(p.status, 303);
        assert_eq!(
            param(&redirect_query(p.location()), "error"),
            Some("access_denied")
        );

        // prompt=none never shows a page.
        let mut silent = s256.to_vec();
        silent.push(("prompt", "none"));
        let p = app.console().get(&authorize_path(&client, &silent)).await;
        assert_eq!(
            param(&redirect_query(p.location()), "error"),
            Some("login_required")
        );
        let p = c.get(&authorize_path(&client, &silent)).await;
        assert_eq!(
            param(&redirect_query(p.location()), "error"),
            Some("consent_required")
        );

        // The consent form needs its CSRF token.
        let page = c.get(&authorize_path(&client, &s256)).await;
        let mut fields: Vec<(String, String)> = hidden_fields(&page.body)
            .into_iter()
            .filter(|(k, _)| k != "csrfmiddlewaretoken")
            .collect();
        fields.push(("allow".into(), "1".into()));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let p = c.post("/o/authorize/", &pairs).await;
        assert_eq!(p.status, 403);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM oauth_codes WHERE used_at IS NULL")
                .await,
            0
        );
    }
);

both_backends!(
    refresh_tokens_rotate_and_reuse_revokes_the_grant,
    async |app: &TestApp| {
        let team = app.team("a").await;
        app.echo_bot(&team).await;
        let client = register(app, &team, user_app(false, true)).await;
        let c = app.signed_in(&team, Role::ChatbotAdmin).await;
        let first = code_flow(app, &c, &client, "chatbots:read sessions:read").await;
        let r1 = first["refresh_token"].as_str().unwrap();

        // A narrower scope is fine; a wider one is not.
        let (s, body) = token(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", r1),
                ("scope", "chatbots:read participants:read"),
            ],
        )
        .await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));
        // The refusal leaves r1 usable.
        let (s, second) = token(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", r1),
                ("scope", "chatbots:read"),
            ],
        )
        .await;
        assert_eq!(s, 200, "{second}");
        assert_eq!(second["scope"], "chatbots:read");
        let a2 = second["access_token"].as_str().unwrap();
        let r2 = second["refresh_token"].as_str().unwrap();
        assert_ne!(r1, r2);
        // The old access token ended with the rotation; the new one works.
        assert_eq!(
            bearer_get(
                app,
                "/api/experiments/",
                first["access_token"].as_str().unwrap()
            )
            .await
            .0,
            401
        );
        assert_eq!(bearer_get(app, "/api/experiments/", a2).await.0, 200);

        // Presenting r1 again is reuse: the whole grant is revoked.
        let (s, body) = token(
            app,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", r1)],
        )
        .await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
        assert_eq!(bearer_get(app, "/api/experiments/", a2).await.0, 401);
        let (s, body) = token(
            app,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", r2)],
        )
        .await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

        // Another client cannot use the refresh token.
        let fresh = code_flow(app, &c, &client, "chatbots:read").await;
        let thief = register(app, &team, user_app(false, true)).await;
        let (s, body) = token(
            app,
            &thief,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    }
);

both_backends!(revocation_and_introspection, async |app: &TestApp| {
    let team = app.team("a").await;
    let other = app.team("b").await;
    app.echo_bot(&team).await;
    let client = register(app, &team, user_app(false, true)).await;
    let public = register(app, &team, user_app(true, true)).await;
    let foreign = register(app, &other, user_app(false, true)).await;
    let c = app.signed_in(&team, Role::ChatbotAdmin).await;
    let t = code_flow(app, &c, &client, "chatbots:read").await;
    let access = t["access_token"].as_str().unwrap();

    let (s, info) = endpoint(app, "/o/introspect/", &client, &[("token", access)]).await;
    assert_eq!(s, 200);
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "chatbots:read");
    assert_eq!(info["client_id"], client.id);
    assert_eq!(info["token_type"], "access_token");
    assert_eq!(info["username"], "chatbot_admin@a.example.org");
    assert_eq!(info["team"], "a");
    assert!(info["exp"].as_i64().unwrap() > info["iat"].as_i64().unwrap());
    // Another team's client learns nothing; a public client may not ask.
    let (s, info) = endpoint(app, "/o/introspect/", &foreign, &[("token", access)]).await;
    assert_eq!((s, info), (200, json!({"active": false})));
    let (s, info) = endpoint(app, "/o/introspect/", &public, &[("token", access)]).await;
    assert_eq!((s, info["error"].as_str()), (401, Some("invalid_client")));
    let (s, info) = endpoint(app, "/o/introspect/", &client, &[("token", "nonsense")]).await;
    assert_eq!((s, info), (200, json!({"active": false})));

    // Revoking another client's token does nothing (and says nothing).
    let (s, _) = endpoint(app, "/o/revoke_token/", &foreign, &[("token", access)]).await;
    assert_eq!(s, 200);
    assert_eq!(bearer_get(app, "/api/experiments/", access).await.0, 200);
    let (s, _) = endpoint(app, "/o/revoke_token/", &client, &[("token", access)]).await;
    assert_eq!(s, 200);
    assert_eq!(bearer_get(app, "/api/experiments/", access).await.0, 401);
    let (_, info) = endpoint(app, "/o/introspect/", &client, &[("token", access)]).await;
    assert_eq!(info, json!({"active": false}));

    // An expired token fails at once, and a code past its minute too.
    let t = code_flow(app, &c, &client, "chatbots:read").await;
    let tok = t["access_token"].as_str().unwrap();
    assert_eq!(bearer_get(app, "/api/experiments/", tok).await.0, 200);
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.domain.db.write,
        "UPDATE oauth_tokens SET expires_at = created_at",
    )
    .await
    .unwrap();
    assert_eq!(bearer_get(app, "/api/experiments/", tok).await.0, 401);
    let (s, body) = token(
        app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let q = consent(
        &c,
        &authorize_path(
            &client,
            &[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        ),
        true,
    )
    .await;
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.domain.db.write,
        "UPDATE oauth_codes SET expires_at = created_at",
    )
    .await
    .unwrap();
    let (s, body) = redeem(
        app,
        &client,
        param(&q, "code").unwrap(),
        REDIRECT,
        Some(VERIFIER),
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // Revoking a refresh token ends its whole grant.
    let t = code_flow(app, &c, &client, "chatbots:read").await;
    let (s, _) = endpoint(
        app,
        "/o/revoke_token/",
        &client,
        &[
            ("token", t["refresh_token"].as_str().unwrap()),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        bearer_get(
            app,
            "/api/experiments/",
            t["access_token"].as_str().unwrap()
        )
        .await
        .0,
        401
    );

    // A member who leaves the team takes their tokens' power with them.
    let t = code_flow(app, &c, &client, "chatbots:read").await;
    domain::users::remove_from_team(&app.domain.db.write, team.id, "chatbot_admin@a.example.org")
        .await
        .unwrap();
    let (s, body) = bearer_get(
        app,
        "/api/experiments/",
        t["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (s, body),
        (
            401,
            json!({"detail": "Incorrect authentication credentials."})
        )
    );

    // Removing the application revokes everything it was given.
    let c2 = app.signed_in(&team, Role::Owner).await;
    let t = code_flow(app, &c2, &client, "chatbots:read").await;
    domain::oauth::apps::remove(&app.domain, team.id, &client.id)
        .await
        .unwrap();
    assert_eq!(
        bearer_get(
            app,
            "/api/experiments/",
            t["access_token"].as_str().unwrap()
        )
        .await
        .0,
        401
    );

    let (s, meta) = status_json(
        app.client
            .get(app.url("/.well-known/oauth-authorization-server")),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(meta["token_endpoint"], app.url("/o/token/"));
    assert_eq!(
        meta["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
});

async fn oauth_widget(app: &TestApp, bot: Uuid, domains: &[&str]) -> String {
    let d: Vec<String> = domains.iter().map(|s| s.to_string()).collect();
    let (_, key) = domain::channels::widget::add_with_mode(
        &app.domain.db.write,
        bot,
        &d,
        AuthLevel::EmbedKey,
        None,
        CredentialMode::OAuth,
    )
    .await
    .unwrap();
    key
}

async fn start(
    app: &TestApp,
    bot: Uuid,
    token: &str,
    origin: Option<&str>,
    extra: Value,
) -> (u16, Value) {
    let mut body = json!({"chatbot_id": bot});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let mut rb = app
        .client
        .post(app.url("/api/chat/start/"))
        .bearer_auth(token)
        .json(&body);
    if let Some(o) = origin {
        rb = rb.header("origin", o);
    }
    status_json(rb).await
}

both_backends!(
    client_credentials_start_widget_chats_for_listed_chatbots,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let other = app.team("b").await;
        let allowed = app.echo_bot(&team).await;
        let unlisted = app.chatbot(&team, "Unlisted").await;
        let browser = app.chatbot(&team, "In a page").await;
        let theirs = app.echo_bot(&other).await;
        oauth_widget(app, allowed, &[]).await;
        oauth_widget(app, unlisted, &[]).await;
        let page_key = oauth_widget(app, browser, &["clinic.example.org"]).await;
        oauth_widget(app, theirs, &[]).await;
        let machine = register(app, &team, machine_app(vec![allowed, browser])).await;
        let empty = register(app, &team, machine_app(vec![])).await;

        let (s, t) = token(app, &machine, &[("grant_type", "client_credentials")]).await;
        assert_eq!(s, 200, "{t}");
        assert_eq!(t["scope"], "chat:start");
        assert!(t.get("refresh_token").is_none());
        let tok = t["access_token"].as_str().unwrap();
        let (s, body) = token(
            app,
            &machine,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "chat:start chatbots:read"),
            ],
        )
        .await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));

        // Server-side start for a listed chatbot: a session with its token.
        let (s, started) = start(app, allowed, tok, None, json!({})).await;
        assert_eq!(s, 201, "{started}");
        assert!(started["session_token"].as_str().is_some());
        let sid = started["session_id"].as_str().unwrap();
        assert_eq!(
        app.scalar(&format!("SELECT COUNT(*) FROM sessions s JOIN channels c ON c.id = s.channel_id WHERE s.external_id = '{sid}' AND c.platform = 'embedded_widget'")).await,
        1
    );

        let denied = json!({"error": "Authentication required to chat with this chatbot", "code": "chat_access_denied"});
        // Unlisted chatbot, another team's, an origin on a server-only channel,
        // a version choice, no channel in oauth mode, a token of an app with no chatbots.
        let (_, empty_t) = token(app, &empty, &[("grant_type", "client_credentials")]).await;
        let no_channel = app.chatbot(&team, "No channel").await;
        for (bot, token, origin) in [
            (unlisted, tok, None),
            (theirs, tok, None),
            (allowed, tok, Some("https://clinic.example.org")),
            (browser, tok, None),
            (no_channel, tok, None),
            (allowed, empty_t["access_token"].as_str().unwrap(), None),
            (allowed, "0000000000000000000000000000000000000000", None),
        ] {
            let (s, body) = start(app, bot, token, origin, json!({})).await;
            assert_eq!((s, &body), (401, &denied), "{bot} {origin:?}");
        }
        let (s, body) = start(
            app,
            browser,
            tok,
            Some("https://clinic.example.org"),
            json!({}),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let (s, body) = start(app, allowed, tok, None, json!({"version_number": 1})).await;
        assert_eq!(
            (s, body),
            (
                403,
                json!({"error": "Version number requires authentication"})
            )
        );
        let (s, body) = start(app, allowed, tok, None, json!({"chatbot_id": "not-a-uuid"})).await;
        assert_eq!(
            (s, body),
            (400, json!({"detail": "chatbot_id must be a valid UUID"}))
        );

        // An embed key alone never admits to an oauth channel.
        let (s, body) = status_json(
            app.client
                .post(app.url("/api/chat/start/"))
                .header("x-embed-key", &page_key)
                .header("origin", "https://clinic.example.org")
                .json(&json!({"chatbot_id": browser})),
        )
        .await;
        assert_eq!((s, body), (401, denied.clone()));

        // A user's token does not start widget chats.
        let user = register(app, &team, user_app(false, true)).await;
        let c = app.signed_in(&team, Role::Owner).await;
        let ut = code_flow(app, &c, &user, "chat:start chatbots:read").await;
        let (s, _) = start(
            app,
            allowed,
            ut["access_token"].as_str().unwrap(),
            None,
            json!({}),
        )
        .await;
        assert_eq!(s, 401);

        // Machine tokens reach nothing else: not even incoming_message.
        let (s, body) = bearer_get(app, "/api/experiments/", tok).await;
        assert_eq!(
            (s, body),
            (
                403,
                json!({"detail": "You do not have permission to perform this action."})
            )
        );
        let (s, _) = status_json(
            app.client
                .post(app.url(&format!("/channels/api/{allowed}/incoming_message")))
                .bearer_auth(tok)
                .json(&json!({"message": "hi"})),
        )
        .await;
        assert_eq!(s, 403);
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM participants WHERE platform = 'api'")
                .await,
            0
        );
    }
);

/// Each operation's method, path (ids are random, so a 404 is an allowed
/// answer) and the scope the contract lists for it.
fn operations() -> Vec<(String, String, String)> {
    let doc = chatstudio_testkit::contract::contract();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(security) = op["security"].as_array() else {
                continue;
            };
            let Some(scope) = security.iter().find_map(|s| s["OAuth2"][0].as_str()) else {
                continue;
            };
            let id = Uuid::new_v4().to_string();
            let concrete = path
                .replace("{experiment_id}", &id)
                .replace("{id}", &id)
                .replace("{version}", "1");
            ops.push((method.to_uppercase(), concrete, scope.to_string()));
        }
    }
    ops
}

both_backends!(every_operation_needs_its_scope, async |app: &TestApp| {
    let team = app.team("a").await;
    let client = register(app, &team, user_app(false, true)).await;
    let c = app.signed_in(&team, Role::Owner).await;
    let ops = operations();
    assert_eq!(ops.len(), 17, "{ops:?}");
    let scopes = [
        "chatbots:read",
        "chatbots:interact",
        "sessions:read",
        "sessions:write",
        "files:read",
        "participants:read",
        "participants:write",
    ];
    let mut tokens = std::collections::HashMap::new();
    for s in scopes {
        let t = code_flow(app, &c, &client, s).await;
        tokens.insert(s, t["access_token"].as_str().unwrap().to_string());
    }
    for (method, path, scope) in &ops {
        for (given, tok) in &tokens {
            let rb = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(tok)
                .json(&json!({}));
            let status = rb.send().await.unwrap().status().as_u16();
            if given == scope {
                assert!(
                    !matches!(status, 401 | 403),
                    "{method} {path} with {given}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{method} {path} with {given} (needs {scope})");
            }
        }
    }
});

both_backends!(
    another_teams_objects_are_404_with_a_token,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let other = app.team("b").await;
        let theirs = app.echo_bot(&other).await;
        let client = register(app, &team, user_app(false, true)).await;
        let c = app.signed_in(&team, Role::Owner).await;
        let t = code_flow(app, &c, &client, "chatbots:read chatbots:interact").await;
        let tok = t["access_token"].as_str().unwrap();
        let (s, _) = bearer_get(app, &format!("/api/experiments/{theirs}/"), tok).await;
        assert_eq!(s, 404);
        let (s, _) = status_json(
            app.client
                .post(app.url(&format!("/channels/api/{theirs}/incoming_message")))
                .bearer_auth(tok)
                .json(&json!({"message": "hi"})),
        )
        .await;
        assert_eq!(s, 404);
        // API keys work unchanged beside tokens.
        let (s, _) = status_json(
            app.client
                .get(app.url("/api/experiments/"))
                .bearer_auth(&team.key),
        )
        .await;
        assert_eq!(s, 200);
    }
);
