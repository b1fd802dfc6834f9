//! Pipelines as the original stores and exports them (a React Flow graph:
//! `nodes[].data.type` with its class names and `params`, edges with
//! `source`, `target` and `sourceHandle`), mapped onto ours.
//!
//! Nothing is guessed: what has no counterpart here (tools, custom actions,
//! source material, collections, voices, Python and assistant nodes) is
//! reported by node, and the import is refused unless the caller asks to
//! leave those parts out. The original's provider and model are database
//! ids of its own, so the caller names the provider (and, where the node
//! names no model, the model) the imported nodes use.
//!
//! A node's id here is its `params.name` (how the original's templates reach
//! its output, `temp_state.outputs.<name>`), else its flow id.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::{EdgeSpec, NodeSpec, Pipeline};

/// What the caller supplies that the original's export cannot.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The team provider every LLM, router and extraction node uses.
    pub provider: Option<String>,
    /// The model, for nodes whose params name none.
    pub model: Option<String>,
    /// Leave out what cannot be mapped instead of refusing the import.
    pub skip_unsupported: bool,
}

#[derive(Debug, Clone)]
pub struct Imported {
    pub pipeline: Pipeline,
    /// What was left out (with `skip_unsupported`), by node.
    pub left_out: Vec<String>,
}

/// LLM node params with no counterpart yet, and when they count as set.
const UNSUPPORTED_LLM_PARAMS: &[&str] = &[
    "mcp_tools",
    "source_material_id",
    "collection_id",
    "collection_index_ids",
    "synthetic_voice_id",
];

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(b) => *b,
        Value::Number(_) => true,
    }
}

/// The nodes and edges of an export: the flow itself, or a pipeline record
/// holding it under `data`.
fn flow(doc: &Value) -> Option<(&Vec<Value>, Vec<Value>)> {
    let f = match doc.get("nodes") {
        Some(_) => doc,
        None => doc.get("data")?,
    };
    let nodes = f.get("nodes")?.as_array()?;
    let edges = f
        .get("edges")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Some((nodes, edges))
}

struct Mapper<'o> {
    options: &'o ImportOptions,
    problems: Vec<String>,
    left_out: Vec<String>,
}

impl Mapper<'_> {
    /// Something this node sets that cannot be carried over.
    fn unsupported(&mut self, node: &str, what: String) {
        let line = format!("node {node:?}: {what}");
        if self.options.skip_unsupported {
            self.left_out.push(line);
        } else {
            self.problems.push(line);
        }
    }

    fn llm_fields(&mut self, node: &str, p: &Map<String, Value>, out: &mut Map<String, Value>) {
        match &self.options.provider {
            Some(provider) => {
                out.insert("provider".into(), json!(provider));
            }
            None => self.problems.push(format!(
                "node {node:?}: the original's provider id {} has no meaning here: name a provider (--provider)",
                p.get("llm_provider_id").unwrap_or(&Value::Null)
            )),
        }
        let model = p
            .get("llm_model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .or_else(|| self.options.model.clone());
        match model {
            Some(m) => {
                out.insert("model".into(), json!(m));
            }
            None => self.problems.push(format!(
                "node {node:?}: the original's model id {} has no meaning here: name a model (--model)",
                p.get("llm_provider_model_id").unwrap_or(&Value::Null)
            )),
        }
        if let Some(params) = p.get("llm_model_parameters").and_then(Value::as_object) {
            for (k, v) in params {
                match k.as_str() {
                    "temperature" => {
                        out.insert("temperature".into(), v.clone());
                    }
                    "max_tokens" => {
                        out.insert("max_tokens".into(), v.clone());
                    }
                    other => self.unsupported(node, format!("model parameter {other:?}")),
                }
            }
        }
    }

    fn history(p: &Map<String, Value>, default_type: &str) -> Value {
        let mut h = Map::new();
        let kind = p
            .get("history_type")
            .and_then(Value::as_str)
            .unwrap_or(default_type);
        h.insert("type".into(), json!(kind));
        if kind == "named"
            && let Some(n) = p.get("history_name").filter(|v| is_set(v))
        {
            h.insert("name".into(), n.clone());
        }
        if let Some(m) = p.get("history_mode").filter(|v| is_set(v)) {
            h.insert("mode".into(), m.clone());
        }
        if let Some(n) = p.get("max_history_length").filter(|v| v.is_u64()) {
            h.insert("max_history_length".into(), n.clone());
        }
        if let Some(n) = p.get("user_max_token_limit").filter(|v| v.is_u64()) {
            h.insert("token_limit".into(), n.clone());
        }
        Value::Object(h)
    }

    fn copy(p: &Map<String, Value>, out: &mut Map<String, Value>, keys: &[&str]) {
        for k in keys {
            if let Some(v) = p.get(*k).filter(|v| !v.is_null()) {
                out.insert((*k).to_string(), v.clone());
            }
        }
    }

    /// Our type and params for one of the original's nodes, if it maps.
    fn node(&mut self, id: &str, class: &str, p: &Map<String, Value>) -> Option<(String, Value)> {
        let mut out = Map::new();
        let kind = match class {
            "StartNode" => return Some(("start".into(), Value::Null)),
            "EndNode" => return Some(("end".into(), Value::Null)),
            "LLMResponseWithPrompt" | "LLMResponse" => {
                self.llm_fields(id, p, &mut out);
                Self::copy(p, &mut out, &["prompt"]);
                out.insert("history".into(), Self::history(p, "global"));
                if let Some(tag) = p.get("tag").filter(|v| is_set(v)) {
                    out.insert("output_tag".into(), tag.clone());
                }
                let tools: Vec<&str> = p
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let (runs, not): (Vec<&str>, Vec<&str>) = tools
                    .into_iter()
                    .partition(|t| super::AGENT_TOOLS.iter().any(|(n, _)| n == t));
                if !runs.is_empty() {
                    out.insert("tools".into(), json!(runs));
                }
                for t in not {
                    self.unsupported(id, format!("tools: {t:?} (not available here yet)"));
                }
                for b in p
                    .get("built_in_tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if super::BUILT_IN_TOOLS.contains(&b) {
                        let list = out.entry("built_in_tools").or_insert_with(|| json!([]));
                        if let Some(a) = list.as_array_mut() {
                            a.push(json!(b));
                        }
                    } else {
                        self.unsupported(id, format!("built_in_tools: {b:?} (not available here)"));
                    }
                }
                if let Some(c) = p
                    .get("tool_config")
                    .and_then(|c| c.get("web-search"))
                    .filter(|c| is_set(c))
                {
                    out.insert("tool_config".into(), json!({"web-search": c}));
                }
                if p.get("custom_actions").is_some_and(is_set) {
                    // The export names actions by the original's database ids.
                    self.unsupported(
                        id,
                        "custom_actions (the original's action ids mean nothing here: add each action with `chatstudio action add` and list it as NAME:OPERATION_ID)".into(),
                    );
                }
                for k in UNSUPPORTED_LLM_PARAMS {
                    if p.get(*k).is_some_and(is_set) {
                        self.unsupported(id, format!("{k} (not available here yet)"));
                    }
                }
                "llm"
            }
            "RouterNode" => {
                self.llm_fields(id, p, &mut out);
                Self::copy(
                    p,
                    &mut out,
                    &[
                        "prompt",
                        "keywords",
                        "default_keyword_index",
                        "tag_output_message",
                    ],
                );
                out.insert("history".into(), Self::history(p, "node"));
                "router"
            }
            "StaticRouterNode" => {
                Self::copy(
                    p,
                    &mut out,
                    &[
                        "data_source",
                        "route_key",
                        "keywords",
                        "default_keyword_index",
                        "tag_output_message",
                    ],
                );
                "static_router"
            }
            "RenderTemplate" => {
                Self::copy(p, &mut out, &["template_string"]);
                "template"
            }
            // "Do Nothing" returns its input unchanged: a template of its input.
            "Passthrough" => {
                out.insert("template_string".into(), json!("{{ input }}"));
                "template"
            }
            "ExtractStructuredData" | "ExtractParticipantData" => {
                self.llm_fields(id, p, &mut out);
                Self::copy(p, &mut out, &["data_schema"]);
                if class == "ExtractParticipantData"
                    && let Some(k) = p.get("key_name").filter(|v| is_set(v))
                {
                    out.insert("key_name".into(), k.clone());
                }
                if class == "ExtractStructuredData" {
                    "extract_structured_data"
                } else {
                    "update_participant_data"
                }
            }
            "SendEmail" => {
                Self::copy(p, &mut out, &["recipient_list", "subject", "body"]);
                "send_email"
            }
            "CodeNode" => {
                Self::copy(p, &mut out, &["code"]);
                if let Some(t) = p.get("tag").filter(|v| is_set(v)) {
                    out.insert("tag".into(), t.clone());
                }
                "code"
            }
            other => {
                let why = match other {
                    "AssistantNode" => "OpenAI Assistant nodes are not available here".to_string(),
                    "BooleanNode" => {
                        "the deprecated Conditional Node has no counterpart (use a static router)"
                            .to_string()
                    }
                    _ => format!("unknown node type {other:?}"),
                };
                self.problems.push(format!("node {id:?}: {why}"));
                return None;
            }
        };
        Some((kind.to_string(), Value::Object(out)))
    }
}

/// Maps an export of the original onto our pipeline format. The problems,
/// when there are any, are one line each, naming the node.
pub fn from_original(doc: &Value, options: &ImportOptions) -> Result<Imported, Vec<String>> {
    let Some((nodes, edges)) = flow(doc) else {
        return Err(vec![
            "not a pipeline of the original: no `nodes` (nor `data.nodes`)".into(),
        ]);
    };
    let mut m = Mapper {
        options,
        problems: Vec::new(),
        left_out: Vec::new(),
    };
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut used: HashSet<String> = HashSet::new();
    let mut specs = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let data = n.get("data").unwrap_or(n);
        let flow_id = n
            .get("id")
            .or_else(|| data.get("id"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("node-{i}"), str::to_string);
        let params = data
            .get("params")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty() && !used.contains(*s))
            .map_or_else(|| flow_id.clone(), str::to_string);
        used.insert(name.clone());
        ids.insert(flow_id.clone(), name.clone());
        let Some(class) = data.get("type").and_then(Value::as_str) else {
            m.problems.push(format!("node {name:?}: no `data.type`"));
            continue;
        };
        if let Some((kind, params)) = m.node(&name, class, &params) {
            specs.push(NodeSpec {
                id: name,
                kind,
                label: data
                    .get("label")
                    .and_then(Value::as_str)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
                params,
            });
        }
    }
    let routers: HashSet<&str> = specs
        .iter()
        .filter(|s| s.kind.ends_with("router"))
        .map(|s| s.id.as_str())
        .collect();
    let mut out_edges = Vec::new();
    for e in &edges {
        let end = |k: &str| e.get(k).and_then(Value::as_str).and_then(|id| ids.get(id));
        let (Some(from), Some(to)) = (end("source"), end("target")) else {
            m.problems.push(format!(
                "edge {}: names a node the export does not have",
                e.get("id").unwrap_or(&Value::Null)
            ));
            continue;
        };
        let handle = if routers.contains(from.as_str()) {
            e.get("sourceHandle")
                .and_then(Value::as_str)
                .map(str::to_string)
        } else {
            None
        };
        out_edges.push(EdgeSpec {
            from: from.clone(),
            to: to.clone(),
            handle,
        });
    }
    if !m.problems.is_empty() {
        return Err(m.problems);
    }
    Ok(Imported {
        pipeline: Pipeline {
            nodes: specs,
            edges: out_edges,
        },
        left_out: m.left_out,
    })
}
