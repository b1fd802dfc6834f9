//! Rules for JSON values the platform stores on behalf of callers.

use serde_json::{Map, Value};

/// NUL and control characters (but tab, LF, CR) are removed from stored strings.
pub fn strip_controls(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(
            s.chars()
                .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_controls).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), strip_controls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The object inside `v`, or an empty one (stored documents are objects).
pub fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}
