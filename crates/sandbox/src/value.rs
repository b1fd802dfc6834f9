//! Values across the sandbox's edge: JSON (participant data, state, HTTP
//! bodies) to and from the interpreter's objects.

use monty_types::MontyObject;
use serde_json::{Map, Number, Value};

/// A JSON value as the sandbox sees it (objects become dicts).
pub fn to_python(v: &Value) -> MontyObject {
    match v {
        Value::Null => MontyObject::None,
        Value::Bool(b) => MontyObject::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => MontyObject::Int(i),
            None => MontyObject::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => MontyObject::String(s.clone()),
        Value::Array(a) => MontyObject::List(a.iter().map(to_python).collect()),
        Value::Object(o) => MontyObject::dict(
            o.iter()
                .map(|(k, v)| (MontyObject::String(k.clone()), to_python(v)))
                .collect::<Vec<_>>(),
        ),
    }
}

/// A sandbox value as JSON, as `json.dumps` would write it; the error
/// names the type that has no JSON form.
pub fn to_json(v: &MontyObject) -> Result<Value, String> {
    Ok(match v {
        MontyObject::None => Value::Null,
        MontyObject::Bool(b) => Value::Bool(*b),
        MontyObject::Int(i) => Value::from(*i),
        MontyObject::BigInt(b) => Value::Number(
            b.to_string()
                .parse::<Number>()
                .map_err(|_| "an integer too large")?,
        ),
        MontyObject::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or("a float that is not finite")?,
        MontyObject::String(s) => Value::String(s.clone()),
        MontyObject::List(items)
        | MontyObject::Tuple(items)
        | MontyObject::Set(items)
        | MontyObject::FrozenSet(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        MontyObject::NamedTuple { values, .. } => {
            Value::Array(values.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        MontyObject::Dict(pairs) => {
            let mut out = Map::new();
            for (k, v) in pairs {
                let key = match k {
                    MontyObject::String(s) => s.clone(),
                    MontyObject::Int(i) => i.to_string(),
                    MontyObject::Bool(b) => if *b { "true" } else { "false" }.to_string(),
                    MontyObject::None => "null".to_string(),
                    MontyObject::Float(f) => f.to_string(),
                    other => return Err(format!("a dict key of type {}", type_name(other))),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        other => return Err(format!("a value of type {}", type_name(other))),
    })
}

/// The Python type name of a value, for messages.
pub fn type_name(v: &MontyObject) -> &'static str {
    match v {
        MontyObject::None => "NoneType",
        MontyObject::Bool(_) => "bool",
        MontyObject::Int(_) | MontyObject::BigInt(_) => "int",
        MontyObject::Float(_) => "float",
        MontyObject::String(_) => "str",
        MontyObject::Bytes(_) => "bytes",
        MontyObject::List(_) => "list",
        MontyObject::Tuple(_) | MontyObject::NamedTuple { .. } => "tuple",
        MontyObject::Dict(_) => "dict",
        MontyObject::Set(_) => "set",
        MontyObject::FrozenSet(_) => "frozenset",
        MontyObject::Date(_) => "date",
        MontyObject::DateTime(_) => "datetime",
        MontyObject::Time(_) => "time",
        MontyObject::TimeDelta(_) => "timedelta",
        MontyObject::Function { .. } | MontyObject::BuiltinFunction(_) => "function",
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips() {
        let v = json!({"a": [1, 2.5, "x", null, true], "b": {"c": -3}});
        assert_eq!(to_json(&to_python(&v)).unwrap(), v);
    }

    #[test]
    fn values_without_json_are_named() {
        assert!(
            to_json(&MontyObject::Bytes(vec![1]))
                .unwrap_err()
                .contains("bytes")
        );
        assert!(to_json(&MontyObject::Float(f64::NAN)).is_err());
        let d = MontyObject::dict(vec![(MontyObject::Int(1), MontyObject::Tuple(vec![]))]);
        assert_eq!(to_json(&d).unwrap(), json!({"1": []}));
    }
}
