//! Data extraction (the original's Extract Structured Data and Update
//! Participant Data): the model fills the author's `data_schema` from the
//! input with structured output; a long input is read in chunks and the
//! partial results merged, later non-null values winning.

use domain::pipeline::ExtractParams;
use llm::{ChatMessage, CompletionRequest, ResponseSchema, Role};
use serde_json::{Map, Value, json};

use super::{Done, NodeCx, usage_items};
use crate::{Engine, TurnError};

const INSTRUCTIONS: &str = "Extract the data described by the schema from the text the user gives. \
     Use only what the text says; give null for anything it does not state.";

/// A strict JSON Schema for a `data_schema` (field → description, nested
/// objects, one-item lists as lists of that item).
pub(super) fn json_schema(shape: &Value) -> Value {
    match shape {
        Value::Object(fields) => {
            let properties: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), json_schema(v)))
                .collect();
            let required: Vec<&String> = fields.keys().collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        }
        Value::Array(items) => json!({
            "type": "array",
            "items": items.first().map_or(json!({"type": "string"}), json_schema),
        }),
        Value::String(description) => {
            json!({"type": ["string", "null"], "description": description})
        }
        _ => json!({"type": ["string", "null"]}),
    }
}

/// `new` merged into `base`: objects key by key, lists appended (without
/// repeats), other values replaced unless `new` is null.
pub(super) fn merge(base: &mut Value, new: Value) {
    match (base, new) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(n)) => {
            for (k, v) in n {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None if !v.is_null() => {
                        b.insert(k, v);
                    }
                    None => {}
                }
            }
        }
        (Value::Array(b), Value::Array(n)) => {
            for v in n {
                if !b.contains(&v) {
                    b.push(v);
                }
            }
        }
        (b, n) => *b = n,
    }
}

/// The participant's data with `extracted` merged in (under `key` if given).
pub(super) fn merged(data: &Value, extracted: Value, key: Option<&str>) -> Value {
    let mut out = match data {
        Value::Object(_) => data.clone(),
        _ => json!({}),
    };
    match key {
        Some(k) => {
            let slot = out
                .as_object_mut()
                .map(|o| o.entry(k.to_string()).or_insert_with(|| json!({})));
            if let Some(slot) = slot {
                if !slot.is_object() {
                    *slot = json!({});
                }
                merge(slot, extracted);
            }
        }
        None => merge(&mut out, extracted),
    }
    out
}

/// `text` in pieces of at most `size` characters.
fn chunks(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

impl Engine {
    pub(super) async fn extract(
        &self,
        cx: &NodeCx<'_, '_>,
        p: &ExtractParams,
    ) -> Result<(Value, Done), TurnError> {
        let (access, client) = self
            .provider_at(cx.run.epoch, cx.run.team_id, &p.provider)
            .await?;
        let schema = json_schema(&p.data_schema);
        let mut system = format!(
            "{INSTRUCTIONS}\n\nSchema (field: description):\n{}",
            p.data_schema
        );
        if matches!(
            cx.node.node,
            domain::pipeline::Node::UpdateParticipantData(_)
        ) {
            system.push_str(&format!(
                "\n\nWhat is already known about the participant:\n{}",
                cx.state.participant_data
            ));
        }
        let mut done = Done::default();
        let mut data = Value::Null;
        for chunk in chunks(&cx.input, p.chunk_size()) {
            let req = CompletionRequest {
                model: p.model.clone(),
                system: Some(system.clone()),
                messages: vec![ChatMessage::new(Role::User, chunk)],
                temperature: Some(0.0),
                max_tokens: None,
                response_schema: Some(ResponseSchema {
                    name: "extracted_data".into(),
                    schema: schema.clone(),
                }),
                tools: Vec::new(),
                built_in: Vec::new(),
            };
            let c = client.complete(&req).await?;
            done.llm_calls += 1;
            done.usage.extend(usage_items(&access.kind, &c, &p.model));
            let part: Value = serde_json::from_str(c.text.trim()).map_err(|e| {
                TurnError::Provider(llm::LlmError::InvalidResponse {
                    message: format!("the extraction is not JSON: {e}"),
                })
            })?;
            if data.is_null() {
                data = part;
            } else {
                merge(&mut data, part);
            }
        }
        Ok((data, done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_from_descriptions() {
        let s = json_schema(&json!({"name": "the name", "kids": [{"age": "years"}]}));
        assert_eq!(s["properties"]["name"]["type"], json!(["string", "null"]));
        assert_eq!(
            s["properties"]["kids"]["items"]["properties"]["age"]["description"],
            "years"
        );
        assert_eq!(s["required"], json!(["kids", "name"]));
    }

    #[test]
    fn merging_keeps_known_values() {
        let mut a = json!({"name": "Ann", "tags": ["x"], "city": null});
        merge(
            &mut a,
            json!({"name": null, "tags": ["x", "y"], "city": "Oslo", "age": null}),
        );
        assert_eq!(
            a,
            json!({"name": "Ann", "tags": ["x", "y"], "city": "Oslo"})
        );
        let d = merged(
            &json!({"timezone": "UTC"}),
            json!({"goal": "walk"}),
            Some("profile"),
        );
        assert_eq!(d, json!({"timezone": "UTC", "profile": {"goal": "walk"}}));
        assert_eq!(chunks("abcde", 2), ["ab", "cd", "e"]);
    }
}
