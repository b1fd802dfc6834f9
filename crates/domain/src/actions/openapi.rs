//! An OpenAPI 3 document read into the operations a model may call.
//!
//! Each operation becomes one tool whose arguments follow the original's
//! shape (`apps/chat/agent/openapi_tool.py`), so prompts written for it keep
//! working: `params` (query), `path_params`, `headers`, `cookies` (one object
//! each, holding that location's parameters) and `body_data` (the JSON
//! request body). Local `$ref`s are inlined; a reference cycle is cut at
//! [`MAX_DEPTH`] (the deeper part accepts any value). Only schema keywords
//! every provider understands are kept, so a schema Gemini would refuse
//! cannot break a node.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How deep schemas are inlined before a nested part accepts any value.
pub const MAX_DEPTH: usize = 12;

/// The HTTP methods an OpenAPI path item may hold operations under.
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// Schema keywords passed on to the model.
const KEPT: &[&str] = &[
    "type",
    "description",
    "enum",
    "format",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "nullable",
    "title",
];

/// Where a parameter goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Query,
    Path,
    Header,
    Cookie,
}

impl Location {
    /// The tool argument holding this location's parameters.
    pub const fn argument(self) -> &'static str {
        match self {
            Location::Query => "params",
            Location::Path => "path_params",
            Location::Header => "headers",
            Location::Cookie => "cookies",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "query" => Some(Location::Query),
            "path" => Some(Location::Path),
            "header" => Some(Location::Header),
            "cookie" => Some(Location::Cookie),
            _ => None,
        }
    }
}

/// The tool argument holding the JSON request body.
pub const BODY: &str = "body_data";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    #[serde(rename = "in")]
    pub location: Location,
    pub required: bool,
}

/// One operation, everything needed to call it without the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// The tool name the model sees.
    pub operation_id: String,
    pub method: String,
    /// The path template, `/forecast/{city}`.
    pub path: String,
    pub description: String,
    pub params: Vec<Param>,
    pub has_body: bool,
    /// JSON schema of the tool's arguments.
    pub schema: Value,
}

/// An operation the document declares that cannot be a tool, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub method: String,
    pub path: String,
    pub reason: String,
}

/// What a document offers.
#[derive(Debug, Clone, Default)]
pub struct Operations {
    pub usable: Vec<Operation>,
    pub skipped: Vec<Skipped>,
}

/// Whether `name` is a function name every provider accepts.
pub fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The name an operation without `operationId` gets: method and path.
fn derived_id(method: &str, path: &str) -> String {
    let mut id = String::from(method);
    for c in path.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && id.ends_with('_')) {
            id.push(c);
        }
    }
    let id = id.trim_end_matches('_');
    id.chars().take(64).collect()
}

/// Reads a document's operations; the error says why the document as a
/// whole is unusable.
pub fn operations(doc: &Value) -> Result<Operations, String> {
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or("the schema is not an OpenAPI 3 document (no \"openapi\" version)")?;
    if !version.starts_with("3.") {
        return Err(format!(
            "OpenAPI {version} is not supported (use an OpenAPI 3 document)"
        ));
    }
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
        .ok_or("the schema has no paths")?;
    let mut out = Operations::default();
    for (path, item) in paths {
        if !path.starts_with('/') {
            return Err(format!("invalid path {path:?}: paths start with /"));
        }
        let item = resolve(doc, item, 0);
        let shared = item.get("parameters").cloned().unwrap_or(Value::Null);
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            match operation(doc, path, method, op, &shared) {
                Ok(o) => out.usable.push(o),
                Err(reason) => out.skipped.push(Skipped {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    reason,
                }),
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for o in &out.usable {
        if !seen.insert(o.operation_id.as_str()) {
            return Err(format!(
                "the operation id {:?} is used twice",
                o.operation_id
            ));
        }
    }
    if out.usable.is_empty() {
        let why = out
            .skipped
            .first()
            .map(|s| format!(" ({} {}: {})", s.method, s.path, s.reason))
            .unwrap_or_default();
        return Err(format!(
            "the schema has no operation that can be called{why}"
        ));
    }
    Ok(out)
}

fn operation(
    doc: &Value,
    path: &str,
    method: &str,
    op: &Value,
    shared: &Value,
) -> Result<Operation, String> {
    let op = resolve(doc, op, 0);
    let operation_id = match op.get("operationId").and_then(Value::as_str) {
        Some(id) if valid_tool_name(id) => id.to_string(),
        Some(id) => {
            return Err(format!(
                "operationId {id:?} must be 1 to 64 letters, digits, _ or -"
            ));
        }
        None => derived_id(method, path),
    };
    let description = ["description", "summary"]
        .iter()
        .filter_map(|k| op.get(*k).and_then(Value::as_str))
        .find(|d| !d.trim().is_empty())
        .unwrap_or(&operation_id)
        .to_string();

    // Operation parameters override path-level ones of the same name and place.
    let mut declared: Vec<(Param, Value)> = Vec::new();
    for list in [shared, op.get("parameters").unwrap_or(&Value::Null)] {
        for p in list.as_array().into_iter().flatten() {
            let p = resolve(doc, p, 0);
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .ok_or("a parameter has no name")?
                .to_string();
            let place = p.get("in").and_then(Value::as_str).unwrap_or("");
            let location = Location::parse(place)
                .ok_or_else(|| format!("parameter {name:?} is in {place:?}"))?;
            let required = location == Location::Path
                || p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let raw = match p.get("schema") {
                Some(s) => s.clone(),
                None => p
                    .get("content")
                    .and_then(Value::as_object)
                    .and_then(|c| c.values().next())
                    .and_then(|m| m.get("schema"))
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "string"})),
            };
            let mut schema = tool_schema(doc, &raw, 0);
            if let (Some(d), Some(o)) = (
                p.get("description").and_then(Value::as_str),
                schema.as_object_mut(),
            ) {
                o.entry("description").or_insert_with(|| d.into());
            }
            declared.retain(|(q, _)| !(q.name == name && q.location == location));
            declared.push((
                Param {
                    name,
                    location,
                    required,
                },
                schema,
            ));
        }
    }
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
            && !declared
                .iter()
                .any(|(p, _)| p.location == Location::Path && p.name == name)
        {
            return Err(format!("the path parameter {{{name}}} is not declared"));
        }
    }

    let mut properties = Map::new();
    let mut required = Vec::new();
    for location in [
        Location::Query,
        Location::Path,
        Location::Header,
        Location::Cookie,
    ] {
        let here: Vec<&(Param, Value)> = declared
            .iter()
            .filter(|(p, _)| p.location == location)
            .collect();
        if here.is_empty() {
            continue;
        }
        let props: Map<String, Value> = here
            .iter()
            .map(|(p, s)| (p.name.clone(), s.clone()))
            .collect();
        let req: Vec<Value> = here
            .iter()
            .filter(|(p, _)| p.required)
            .map(|(p, _)| Value::String(p.name.clone()))
            .collect();
        let mut group = json!({"type": "object", "properties": props});
        if !req.is_empty() {
            group["required"] = Value::Array(req);
            required.push(Value::String(location.argument().into()));
        }
        properties.insert(location.argument().into(), group);
    }

    let mut has_body = false;
    if let Some(body) = op.get("requestBody") {
        let body = resolve(doc, body, 0);
        let content = body.get("content").and_then(Value::as_object);
        let json_body = content.and_then(|c| {
            c.iter()
                .find(|(k, _)| k.as_str() == "application/json" || k.ends_with("+json"))
                .map(|(_, v)| v)
        });
        match (content, json_body) {
            (Some(_), Some(media)) => {
                let raw = media.get("schema").cloned().unwrap_or_else(|| json!({}));
                properties.insert(BODY.into(), tool_schema(doc, &raw, 0));
                if body
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                {
                    required.push(Value::String(BODY.into()));
                }
                has_body = true;
            }
            (Some(c), None) if !c.is_empty() => {
                let kinds: Vec<&str> = c.keys().map(String::as_str).collect();
                return Err(format!(
                    "only application/json request bodies are supported (this one is {})",
                    kinds.join(", ")
                ));
            }
            _ => {}
        }
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    Ok(Operation {
        operation_id,
        method: method.to_string(),
        path: path.to_string(),
        description,
        params: declared.into_iter().map(|(p, _)| p).collect(),
        has_body,
        schema,
    })
}

/// Follows a local `$ref` (`#/components/…`); anything else stays as it is.
fn resolve(doc: &Value, v: &Value, depth: usize) -> Value {
    let Some(r) = v.get("$ref").and_then(Value::as_str) else {
        return v.clone();
    };
    if depth >= MAX_DEPTH {
        return json!({});
    }
    let Some(pointer) = r.strip_prefix('#') else {
        return json!({});
    };
    match doc.pointer(pointer) {
        Some(target) => resolve(doc, target, depth + 1),
        None => json!({}),
    }
}

/// A schema as the model gets it: references inlined, keywords limited to
/// those in [`KEPT`] plus the structural ones.
fn tool_schema(doc: &Value, raw: &Value, depth: usize) -> Value {
    if depth >= MAX_DEPTH {
        return json!({});
    }
    let s = resolve(doc, raw, depth);
    let Some(o) = s.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for k in KEPT {
        if let Some(v) = o.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let inner: Map<String, Value> = props
            .iter()
            .map(|(k, v)| (k.clone(), tool_schema(doc, v, depth + 1)))
            .collect();
        out.insert("properties".into(), Value::Object(inner));
        out.entry("type").or_insert_with(|| "object".into());
    }
    if let Some(r) = o.get("required").filter(|r| r.is_array()) {
        out.insert("required".into(), r.clone());
    }
    if let Some(items) = o.get("items") {
        out.insert("items".into(), tool_schema(doc, items, depth + 1));
    }
    if let Some(extra) = o.get("additionalProperties").filter(|a| a.is_object()) {
        out.insert(
            "additionalProperties".into(),
            tool_schema(doc, extra, depth + 1),
        );
    }
    for k in ["anyOf", "oneOf"] {
        if let Some(list) = o.get(k).and_then(Value::as_array) {
            let alts: Vec<Value> = list
                .iter()
                .map(|v| tool_schema(doc, v, depth + 1))
                .collect();
            out.insert("anyOf".into(), Value::Array(alts));
        }
    }
    if let Some(list) = o.get("allOf").and_then(Value::as_array) {
        merge_all_of(
            &mut out,
            list.iter().map(|v| tool_schema(doc, v, depth + 1)),
        );
    }
    Value::Object(out)
}

/// `allOf` folded into one object schema: properties and required lists unite.
fn merge_all_of(out: &mut Map<String, Value>, parts: impl Iterator<Item = Value>) {
    for part in parts {
        let Value::Object(p) = part else { continue };
        for (k, v) in p {
            match (k.as_str(), out.get_mut(&k)) {
                ("properties", Some(Value::Object(have))) => {
                    if let Value::Object(more) = v {
                        have.extend(more);
                    }
                }
                ("required", Some(Value::Array(have))) => {
                    if let Value::Array(more) = v {
                        for r in more {
                            if !have.contains(&r) {
                                have.push(r);
                            }
                        }
                    }
                }
                (_, Some(_)) => {}
                (_, None) => {
                    out.insert(k, v);
                }
            }
        }
    }
}
