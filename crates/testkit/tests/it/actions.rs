//! Custom actions: a team's OpenAPI-described API called by an LLM node,
//! against a local server: the request built from the schema, each auth
//! kind, the refused addresses, the caps, and versions that froze what they
//! call.

use chatstudio_testkit::{OUTBOUND_MAX_BYTES, TestApp, TestTeam, both_backends};
use domain::actions::{Auth, AuthKind, NewAction};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::tools::{local_bot, say};

fn weather_doc(forecast_path: &str) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Weather", "version": "1"},
        "paths": {
            forecast_path: {
                "get": {
                    "operationId": "get_forecast",
                    "summary": "The forecast for a city",
                    "parameters": [
                        {"name": "city", "in": "path", "required": true, "schema": {"type": "string"}},
                        {"name": "day", "in": "query", "schema": {"type": "integer"}},
                        {"name": "tags", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                        {"name": "X-Api-Key", "in": "header", "schema": {"type": "string"}}
                    ]
                }
            },
            "/reports": {
                "post": {
                    "operationId": "file_report",
                    "description": "File a weather report",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "rain_mm": {"type": "number"}},
                        "required": ["city"]
                    }}}}
                }
            },
            "/health": {"get": {"operationId": "health"}}
        }
    })
}

fn weather(server_url: &str, auth: Auth) -> NewAction {
    NewAction {
        name: "weather".into(),
        description: "The weather service".into(),
        prompt: "Temperatures are in Celsius.".into(),
        server_url: server_url.into(),
        schema: weather_doc("/forecast/{city}"),
        auth,
        health_path: Some("/health".into()),
    }
}

fn api_key(secret: &str) -> Auth {
    Auth {
        kind: AuthKind::ApiKey,
        header: None,
        username: None,
        secret: Some(secret.into()),
    }
}

/// A built-in-model bot whose LLM node may call the weather operations.
async fn weather_bot(app: &TestApp, team: &TestTeam) -> Uuid {
    local_bot(
        app,
        team,
        json!({"custom_actions": ["weather:get_forecast", "weather:file_report"]}),
    )
    .await
}

/// The calls the node made in the only session's first turn.
async fn tool_calls(app: &TestApp, team: &TestTeam) -> Vec<Value> {
    let t = app.traces(team).await;
    t[0]["nodes"][1]["tool_calls"].as_array().unwrap().clone()
}

both_backends!(
    parameters_and_body_are_built_from_the_schema,
    async |app: &TestApp| {
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("sunny, 21"))
            .mount(&api)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/reports"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 7})))
            .mount(&api)
            .await;
        let team = app.team("a").await;
        app.action(
            &team,
            weather(&format!("{}/v1/", api.uri()), api_key("k-123")),
        )
        .await;
        let bot = weather_bot(app, &team).await;
        let (s, v) = say(
            app,
            &team,
            bot,
            "/tool get_forecast {\"path_params\": {\"city\": \"São Paulo/../x\"}, \"params\": {\"day\": 2, \"tags\": [\"a\", \"b\"]}, \"headers\": {\"X-Trace\": \"t1\", \"X-Api-Key\": \"model-made\"}, \"extra\": 1}\n\
             /tool file_report {\"body_data\": {\"city\": \"Oslo\", \"rain_mm\": 3.5}}",
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["response"],
            "get_forecast: sunny, 21\nfile_report: {\"id\":7}"
        );

        let got = api.received_requests().await.unwrap();
        assert_eq!(got.len(), 2);
        let get = &got[0];
        // A path value stays one segment: it cannot climb out of the path.
        assert_eq!(get.url.path(), "/v1/forecast/S%C3%A3o%20Paulo%2F..%2Fx");
        assert_eq!(get.url.query(), Some("day=2&tags=a&tags=b"));
        assert_eq!(get.headers["x-trace"], "t1");
        // The credential is the action's, never the model's.
        assert_eq!(get.headers.get_all("x-api-key").iter().count(), 1);
        assert_eq!(get.headers["x-api-key"], "k-123");
        let post = &got[1];
        assert_eq!(post.headers["content-type"], "application/json");
        assert_eq!(
            serde_json::from_slice::<Value>(&post.body).unwrap(),
            json!({"city": "Oslo", "rain_mm": 3.5})
        );

        // The model saw the operations as the original's argument groups.
        let calls = tool_calls(app, &team).await;
        assert_eq!(calls[0]["name"], "get_forecast");
        assert_eq!(calls[0]["result"], "sunny, 21");
        assert_eq!(calls[1]["result"], "{\"id\":7}");

        // A required parameter the model left out is its error, not a call.
        let (_, v) = say(
            app,
            &team,
            bot,
            "/tool get_forecast {\"params\": {\"day\": 1}}",
        )
        .await;
        assert!(
            v["response"]
                .as_str()
                .unwrap()
                .contains("the required parameter \"city\""),
            "{v}"
        );
        assert_eq!(api.received_requests().await.unwrap().len(), 2);
    }
);

both_backends!(
    each_auth_kind_sends_its_credential_to_its_own_server_only,
    async |app: &TestApp| {
        let api = MockServer::start().await;
        let elsewhere = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/forecast/away"))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", format!("{}/steal", elsewhere.uri())),
            )
            .mount(&api)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&api)
            .await;
        let cases = [
            (
                Auth {
                    kind: AuthKind::Bearer,
                    header: None,
                    username: None,
                    secret: Some("tok-1".into()),
                },
                ("authorization", "Bearer tok-1"),
            ),
            (
                Auth {
                    kind: AuthKind::Basic,
                    header: None,
                    username: Some("ana".into()),
                    secret: Some("pa55".into()),
                },
                // base64("ana:pa55")
                ("authorization", "Basic YW5hOnBhNTU="),
            ),
            (
                Auth {
                    kind: AuthKind::ApiKey,
                    header: Some("X-Weather-Key".into()),
                    username: None,
                    secret: Some("wk".into()),
                },
                ("x-weather-key", "wk"),
            ),
        ];
        for (i, (auth, (header, value))) in cases.into_iter().enumerate() {
            let team = app.team(&format!("t{i}")).await;
            app.action(&team, weather(&api.uri(), auth)).await;
            let bot = weather_bot(app, &team).await;
            let (s, v) = say(
                app,
                &team,
                bot,
                "/tool get_forecast {\"path_params\": {\"city\": \"oslo\"}}",
            )
            .await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["response"], "get_forecast: ok");
            let got = api.received_requests().await.unwrap();
            let last = got.last().unwrap();
            assert_eq!(last.headers[header], value, "{header}");
        }

        // A redirect elsewhere is not followed: the other server never hears of it.
        let team = app.team("redirect").await;
        app.action(&team, weather(&api.uri(), api_key("secret-k")))
            .await;
        let bot = weather_bot(app, &team).await;
        let (_, v) = say(
            app,
            &team,
            bot,
            "/tool get_forecast {\"path_params\": {\"city\": \"away\"}}",
        )
        .await;
        let reply = v["response"].as_str().unwrap();
        assert!(
            reply.contains("302") && reply.contains("not followed"),
            "{reply}"
        );
        assert!(elsewhere.received_requests().await.unwrap().is_empty());
    }
);

both_backends!(
    private_addresses_big_and_slow_answers_are_errors_the_model_sees,
    async |app: &TestApp| {
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/forecast/big"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string("x".repeat(OUTBOUND_MAX_BYTES + 1)),
            )
            .mount(&api)
            .await;
        Mock::given(method("GET"))
            .and(path("/forecast/slow"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string("late")
                    .set_delay(std::time::Duration::from_millis(2500)),
            )
            .mount(&api)
            .await;
        Mock::given(method("GET"))
            .and(path("/forecast/down"))
            .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
            .mount(&api)
            .await;
        let port = api.address().port();
        let cases: Vec<(String, &str, &str)> = vec![
            (api.uri(), "big", "larger than"),
            (api.uri(), "slow", "no answer within"),
            (api.uri(), "down", "answered 503: maintenance"),
            // Loopback beyond the allowed 127.0.0.1, a private and a link-local address.
            (format!("http://127.0.0.2:{port}"), "x", "private address"),
            ("http://10.1.2.3".into(), "x", "private address"),
            ("http://169.254.169.254".into(), "x", "private address"),
            (format!("http://[::1]:{port}"), "x", "private address"),
        ];
        for (i, (url, city, says)) in cases.iter().enumerate() {
            let team = app.team(&format!("t{i}")).await;
            app.action(&team, weather(url, Auth::default())).await;
            let bot = weather_bot(app, &team).await;
            let (s, v) = say(
                app,
                &team,
                bot,
                &format!("/tool get_forecast {{\"path_params\": {{\"city\": \"{city}\"}}}}"),
            )
            .await;
            // The turn answers; the failure is the tool's, shown to the model and traced.
            assert_eq!(s, 200, "{url}: {v}");
            let reply = v["response"].as_str().unwrap();
            assert!(reply.contains(says), "{url} {city}: {reply}");
            let sessions = app.get_json("/api/sessions/", &team.key).await;
            let sid = sessions["results"][0]["id"].as_str().unwrap();
            let t = app
                .get_json(&format!("/api/sessions/{sid}/traces/"), &team.key)
                .await;
            let call = &t["results"][0]["nodes"][1]["tool_calls"][0];
            assert!(call["error"].as_str().unwrap().contains(says), "{call}");
            assert!(call["result"].is_null());
        }
    }
);

both_backends!(
    actions_are_checked_on_save_and_frozen_by_publish,
    async |app: &TestApp| {
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&api)
            .await;
        let team = app.team("a").await;
        let d = &app.domain;
        let node = |refs: Value, tools: Value| {
            let mut p =
                serde_json::to_value(domain::pipeline::Pipeline::single_llm("local", "echo", ""))
                    .unwrap();
            p["nodes"][1]["params"]["custom_actions"] = refs;
            p["nodes"][1]["params"]["tools"] = tools;
            json!({"pipeline": p})
        };
        let refused = |config: Value| async move {
            domain::chatbots::create(&d.db.write, team.id, None, "Bot", None, Some(config))
                .await
                .unwrap_err()
                .to_string()
        };
        // Another team's action of the name is not this team's.
        let other = app.team("b").await;
        app.action(&other, weather(&api.uri(), Auth::default()))
            .await;
        let e = refused(node(json!(["weather:get_forecast"]), json!([]))).await;
        assert!(
            e.contains("custom action \"weather\" does not exist"),
            "{e}"
        );
        app.action(&team, weather(&api.uri(), Auth::default()))
            .await;
        let e = refused(node(json!(["weather:nope"]), json!([]))).await;
        assert!(e.contains("has no operation \"nope\""), "{e}");
        let e = refused(node(json!(["weather"]), json!([]))).await;
        assert!(e.contains("ACTION:OPERATION_ID"), "{e}");
        let mut twin = weather(&api.uri(), Auth::default());
        twin.name = "weather2".into();
        app.action(&team, twin).await;
        let e = refused(node(
            json!(["weather:get_forecast", "weather2:get_forecast"]),
            json!([]),
        ))
        .await;
        assert!(e.contains("a second tool named \"get_forecast\""), "{e}");

        let bot = weather_bot(app, &team).await;
        app.publish(&team, bot, "v1", true).await;
        // The document moves the operation; the published version keeps calling what it froze.
        let mut moved = weather(&api.uri(), Auth::default());
        moved.schema = weather_doc("/v2/forecast/{city}");
        domain::actions::put(&d.db.write, &d.secrets, team.id, moved)
            .await
            .unwrap();
        let call = "/tool get_forecast {\"path_params\": {\"city\": \"oslo\"}}";
        let (s, v) = say(app, &team, bot, call).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = app
            .post_json(
                &format!("/channels/api/{bot}/v2/incoming_message"),
                &team.key,
                &json!({"message": call}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let paths: Vec<String> = api
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| r.url.path().to_string())
            .collect();
        assert_eq!(paths, ["/forecast/oslo", "/v2/forecast/oslo"]);

        // An action the working or published version uses cannot be removed.
        let e = domain::actions::remove(&d.db.write, team.id, "weather")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("uses the action"), "{e}");
    }
);

both_backends!(
    the_periodic_health_check_records_up_and_down,
    async |app: &TestApp| {
        let api = MockServer::start().await;
        let team = app.team("a").await;
        app.action(&team, weather(&api.uri(), api_key("hk"))).await;
        let mut quiet = weather(&api.uri(), Auth::default());
        quiet.name = "no-health".into();
        quiet.health_path = None;
        app.action(&team, quiet).await;
        let status = |list: &[domain::actions::Action], name: &str| {
            list.iter()
                .find(|a| a.name == name)
                .map(|a| (a.health_status, a.last_health_check.is_some()))
                .unwrap()
        };
        let up = Mock::given(method("GET"))
            .and(path("/health"))
            .and(wiremock::matchers::header("x-api-key", "hk"))
            .respond_with(ResponseTemplate::new(204))
            .mount_as_scoped(&api)
            .await;
        let checked = engine::tools::actions::check_health(&app.engine, 100)
            .await
            .unwrap();
        assert_eq!(checked, 1, "only actions with a health path");
        let list = domain::actions::list(&app.domain, team.id).await.unwrap();
        assert_eq!(
            status(&list, "weather"),
            (domain::actions::Health::Up, true)
        );
        assert_eq!(
            status(&list, "no-health"),
            (domain::actions::Health::Unknown, false)
        );
        drop(up);
        Mock::given(method("GET"))
            .and(path("/health"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&api)
            .await;
        engine::tools::actions::check_health(&app.engine, 100)
            .await
            .unwrap();
        let list = domain::actions::list(&app.domain, team.id).await.unwrap();
        assert_eq!(status(&list, "weather").0, domain::actions::Health::Down);
    }
);
