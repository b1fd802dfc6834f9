//! The upstream contract (`shared/contract/ocs-api-v1.yml`) as JSON Schema, so
//! black-box tests can validate response bodies against it.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// Where the contract lives: `CHATSTUDIO_CONTRACT`, else `../shared/contract`
/// beside the repository.
pub fn contract_path() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("CHATSTUDIO_CONTRACT") {
        return p.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/contract/ocs-api-v1.yml")
}

pub fn contract() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = contract_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the contract at {}: {e}", path.display()));
        yaml_serde::from_str(&text).expect("contract parses")
    })
}

/// OpenAPI 3.0 schema → JSON Schema: `$ref`s point into `$defs`, and
/// `nullable: true` becomes "or null".
fn convert(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                match k.as_str() {
                    "$ref" => {
                        let r = val
                            .as_str()
                            .unwrap_or("")
                            .replace("#/components/schemas/", "#/$defs/");
                        out.insert(k.clone(), Value::String(r));
                    }
                    "nullable" | "example" | "discriminator" | "xml" => {}
                    _ => {
                        out.insert(k.clone(), convert(val));
                    }
                }
            }
            if m.get("nullable") == Some(&Value::Bool(true)) {
                json!({"anyOf": [Value::Object(out), {"type": "null"}]})
            } else {
                Value::Object(out)
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(convert).collect()),
        other => other.clone(),
    }
}

/// Validates `body` against the contract's `components.schemas[name]`; panics
/// with every violation listed.
pub fn assert_schema(name: &str, body: &Value) {
    let schemas = &contract()["components"]["schemas"];
    assert!(schemas.get(name).is_some(), "contract has no schema {name}");
    let root = json!({
        "$defs": convert(schemas),
        "$ref": format!("#/$defs/{name}"),
    });
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "body does not match {name}: {errors:#?}\nbody: {body}"
    );
}

/// `(METHOD, path, operationId)` of every operation in an OpenAPI document.
pub fn operations(doc: &Value) -> Vec<(String, String, String)> {
    let mut ops = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            if let Some(item) = item.as_object() {
                for (method, op) in item {
                    if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                        ops.push((method.to_uppercase(), path.clone(), id.to_string()));
                    }
                }
            }
        }
    }
    ops.sort();
    ops
}
