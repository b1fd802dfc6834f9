use serde_json::json;

use super::openapi::{Location, operations};
use super::{Auth, AuthKind, check_auth};

fn doc(paths: serde_json::Value) -> serde_json::Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Weather", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {
                "Unit": {"type": "string", "enum": ["c", "f"], "x-internal": true},
                "Report": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "unit": {"$ref": "#/components/schemas/Unit"},
                        "next": {"$ref": "#/components/schemas/Report"}
                    },
                    "required": ["city"]
                }
            },
            "parameters": {
                "Day": {"name": "day", "in": "query", "schema": {"type": "integer"}, "description": "Days ahead"}
            }
        }
    })
}

#[test]
fn parameters_and_body_become_the_originals_argument_groups() {
    let d = doc(json!({
        "/forecast/{city}": {
            "parameters": [{"name": "city", "in": "path", "schema": {"type": "string"}}],
            "get": {
                "operationId": "get_forecast",
                "summary": "The forecast for a city",
                "parameters": [
                    {"$ref": "#/components/parameters/Day"},
                    {"name": "unit", "in": "query", "required": true, "schema": {"$ref": "#/components/schemas/Unit"}},
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}
                ]
            }
        },
        "/reports": {
            "post": {
                "operationId": "file_report",
                "description": "File a weather report",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}}
            }
        }
    }));
    let ops = operations(&d).unwrap();
    assert!(ops.skipped.is_empty(), "{:?}", ops.skipped);
    let get = &ops.usable[0];
    assert_eq!(get.operation_id, "get_forecast");
    assert_eq!(get.method, "get");
    assert_eq!(get.description, "The forecast for a city");
    assert_eq!(
        get.schema,
        json!({
            "type": "object",
            "properties": {
                "params": {
                    "type": "object",
                    "properties": {
                        "day": {"type": "integer", "description": "Days ahead"},
                        "unit": {"type": "string", "enum": ["c", "f"]}
                    },
                    "required": ["unit"]
                },
                "path_params": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"]
                },
                "headers": {"type": "object", "properties": {"X-Trace": {"type": "string"}}}
            },
            "required": ["params", "path_params"]
        })
    );
    let place: Vec<(&str, Location, bool)> = get
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.location, p.required))
        .collect();
    assert_eq!(
        place,
        [
            ("city", Location::Path, true),
            ("day", Location::Query, false),
            ("unit", Location::Query, true),
            ("X-Trace", Location::Header, false)
        ]
    );

    let post = &ops.usable[1];
    assert!(post.has_body);
    assert_eq!(post.schema["required"], json!(["body_data"]));
    let body = &post.schema["properties"]["body_data"];
    assert_eq!(body["required"], json!(["city"]));
    assert_eq!(body["properties"]["unit"]["enum"], json!(["c", "f"]));
    // The self-reference is inlined down to the depth limit, then accepts anything.
    let mut deep = body;
    let mut levels = 0;
    while let Some(next) = deep["properties"].get("next") {
        deep = next;
        levels += 1;
    }
    assert!(
        (5..=super::openapi::MAX_DEPTH).contains(&levels),
        "{levels}"
    );
}

#[test]
fn unusable_operations_are_skipped_with_a_reason_and_ids_derived() {
    let d = doc(json!({
        "/upload": {"put": {"operationId": "upload", "requestBody": {"content": {"multipart/form-data": {"schema": {}}}}}},
        "/items/{id}": {"delete": {"operationId": "drop"}},
        "/bad": {"get": {"operationId": "has spaces"}},
        "/v1/users/list": {"get": {"summary": "List users"}}
    }));
    let ops = operations(&d).unwrap();
    let ids: Vec<&str> = ops.usable.iter().map(|o| o.operation_id.as_str()).collect();
    assert_eq!(ids, ["get_v1_users_list"]);
    let reasons: Vec<String> = ops
        .skipped
        .iter()
        .map(|s| format!("{} {}: {}", s.method, s.path, s.reason))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("multipart/form-data")));
    assert!(reasons.iter().any(|r| r.contains("{id} is not declared")));
    assert!(reasons.iter().any(|r| r.contains("\"has spaces\"")));
}

#[test]
fn documents_that_offer_nothing_are_refused() {
    for (d, says) in [
        (json!({"swagger": "2.0", "paths": {}}), "not an OpenAPI 3"),
        (
            json!({"openapi": "2.0", "paths": {"/a": {}}}),
            "not supported",
        ),
        (json!({"openapi": "3.1.0", "paths": {}}), "no paths"),
        (
            json!({"openapi": "3.1.0", "paths": {"/a": {"get": {"operationId": "x"}}, "/b": {"get": {"operationId": "x"}}}}),
            "used twice",
        ),
        (
            json!({"openapi": "3.1.0", "paths": {"/a": {"get": {"operationId": "bad id"}}}}),
            "no operation that can be called",
        ),
        (json!("text"), "not an OpenAPI 3"),
    ] {
        let e = operations(&d).unwrap_err();
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn auth_settings_must_be_able_to_authenticate() {
    let a = |kind, header: Option<&str>, username: Option<&str>, secret: Option<&str>| Auth {
        kind,
        header: header.map(Into::into),
        username: username.map(Into::into),
        secret: secret.map(Into::into),
    };
    assert!(check_auth(&a(AuthKind::None, None, None, None)).is_ok());
    assert!(check_auth(&a(AuthKind::ApiKey, None, None, Some("k"))).is_ok());
    assert!(check_auth(&a(AuthKind::ApiKey, Some("X-Key"), None, Some("k"))).is_ok());
    assert!(check_auth(&a(AuthKind::Bearer, None, None, Some("t"))).is_ok());
    assert!(check_auth(&a(AuthKind::Basic, None, Some("u"), Some("p"))).is_ok());
    for bad in [
        a(AuthKind::None, None, None, Some("s")),
        a(AuthKind::ApiKey, None, None, None),
        a(AuthKind::ApiKey, Some("Bad Header"), None, Some("k")),
        a(AuthKind::Bearer, None, None, Some("  ")),
        a(AuthKind::Bearer, Some("X"), None, Some("t")),
        a(AuthKind::Basic, None, None, Some("p")),
        a(AuthKind::Basic, None, Some("a:b"), Some("p")),
    ] {
        assert!(check_auth(&bad).is_err(), "{bad:?}");
    }
    let shown = format!("{:?}", a(AuthKind::Bearer, None, None, Some("s3cret")));
    assert!(!shown.contains("s3cret"), "{shown}");
}
