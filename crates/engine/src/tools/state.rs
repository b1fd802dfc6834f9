//! Tools that keep values: in participant data or session state, set,
//! appended to as lists, or counted (`_counter_<name>`, as the original).

use serde_json::{Map, Value};

/// A value as the model reads it back: text as is, the rest as JSON.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn object(doc: &mut Value) -> &mut Map<String, Value> {
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    match doc {
        Value::Object(o) => o,
        _ => unreachable!("made an object above"),
    }
}

pub fn set(doc: &mut Value, key: &str, args: &Value, what: &str) -> Result<String, String> {
    let value = args
        .get("value")
        .cloned()
        .ok_or("Error: the argument \"value\" is required")?;
    let shown = value.to_string();
    object(doc).insert(key.to_string(), value);
    Ok(match what {
        "session state" => {
            format!("The value has been set in session state for key '{key}':\n{shown}")
        }
        _ => "The new value has been set in user data.".to_string(),
    })
}

pub fn append(doc: &mut Value, key: &str, args: &Value) -> Result<String, String> {
    let value = args
        .get("value")
        .cloned()
        .ok_or("Error: the argument \"value\" is required")?;
    let slot = object(doc).entry(key.to_string()).or_insert(Value::Null);
    let mut list = match slot.take() {
        Value::Null => Vec::new(),
        Value::Array(a) => a,
        other => vec![other],
    };
    match value {
        Value::Array(items) => list.extend(items),
        v => list.push(v),
    }
    let shown = if list.len() > 10 {
        format!(
            "The last 10 items in the list are: {}",
            Value::Array(list[list.len() - 10..].to_vec())
        )
    } else {
        format!("The new list is: {}", Value::Array(list.clone()))
    };
    *slot = Value::Array(list);
    Ok(format!(
        "The value was appended to the end of the list. {shown}"
    ))
}

pub fn increment(doc: &mut Value, args: &Value) -> Result<String, String> {
    let counter = args
        .get("counter")
        .and_then(Value::as_str)
        .ok_or("Error: the argument \"counter\" (text) is required")?;
    let by = match args.get("value") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_i64()
            .ok_or("Error: \"value\" must be a whole number")?,
    };
    let slot = object(doc)
        .entry(format!("_counter_{counter}"))
        .or_insert(Value::from(0));
    let now = slot.as_i64().unwrap_or(0).saturating_add(by);
    *slot = Value::from(now);
    Ok(format!(
        "The '{counter}' counter has been successfully incremented. The new value is {now}."
    ))
}
