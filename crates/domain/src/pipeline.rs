//! The pipeline format stored in a chatbot's configuration (`config.pipeline`)
//! and its validation on save. The engine crate executes it.
//!
//! ```yaml
//! pipeline:
//!   nodes:
//!     - {id: start, type: start}
//!     - id: llm
//!       type: llm
//!       params: {provider: openai, model: gpt-4o-mini, prompt: "You are…", history: {mode: max_history_length, max_history_length: 10}}
//!     - {id: end, type: end}
//!   edges:
//!     - {from: start, to: llm}
//!     - {from: llm, to: end}
//! ```
//!
//! Node types are a closed list checked here; each has its own params type, so
//! router, template, extraction and code nodes add a variant and a params struct
//! without changing the graph checks or the executor's walk.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::prompt::Template;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub edges: Vec<EdgeSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    pub from: String,
    pub to: String,
    /// Output handle of the source node (routers pick one); `None` = always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HistoryMode {
    #[default]
    Summarize,
    TruncateTokens,
    MaxHistoryLength,
}

impl HistoryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryMode::Summarize => "summarize",
            HistoryMode::TruncateTokens => "truncate_tokens",
            HistoryMode::MaxHistoryLength => "max_history_length",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HistoryType {
    /// The session's whole transcript.
    #[default]
    Global,
    /// No history: the node sees only the current input.
    None,
}

pub const DEFAULT_MAX_HISTORY_LENGTH: u32 = 10;
pub const DEFAULT_TOKEN_LIMIT: u32 = 8_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    #[serde(default, rename = "type")]
    pub kind: HistoryType,
    #[serde(default)]
    pub mode: HistoryMode,
    /// For `max_history_length`: how many messages to keep (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_history_length: Option<u32>,
    /// For `summarize` and `truncate_tokens`: the history token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_limit: Option<u32>,
}

impl HistorySettings {
    pub fn max_length(&self) -> usize {
        self.max_history_length
            .unwrap_or(DEFAULT_MAX_HISTORY_LENGTH) as usize
    }
    pub fn token_limit(&self) -> usize {
        self.token_limit.unwrap_or(DEFAULT_TOKEN_LIMIT) as usize
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmParams {
    /// The team provider's name.
    pub provider: String,
    pub model: String,
    /// The system prompt, with `{variables}`.
    #[serde(default)]
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub history: HistorySettings,
}

/// A node with its params parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Start,
    End,
    Llm(Box<LlmParams>),
}

/// A pipeline that passed validation, in execution (topological) order.
#[derive(Debug, Clone)]
pub struct ValidPipeline {
    pub nodes: Vec<(String, Node)>,
    /// Incoming edges per node id.
    pub incoming: HashMap<String, Vec<EdgeSpec>>,
    pub prompts: HashMap<String, Template>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::field("pipeline", msg)
}

impl Pipeline {
    /// The one-node pipeline `chatbot create --provider --model --prompt` makes.
    pub fn single_llm(provider: &str, model: &str, prompt: &str) -> Pipeline {
        let params = serde_json::to_value(LlmParams {
            provider: provider.into(),
            model: model.into(),
            prompt: prompt.into(),
            temperature: None,
            max_tokens: None,
            history: HistorySettings::default(),
        })
        .unwrap_or(Value::Null);
        Pipeline {
            nodes: vec![
                NodeSpec {
                    id: "start".into(),
                    kind: "start".into(),
                    label: None,
                    params: Value::Null,
                },
                NodeSpec {
                    id: "llm".into(),
                    kind: "llm".into(),
                    label: None,
                    params,
                },
                NodeSpec {
                    id: "end".into(),
                    kind: "end".into(),
                    label: None,
                    params: Value::Null,
                },
            ],
            edges: vec![
                EdgeSpec {
                    from: "start".into(),
                    to: "llm".into(),
                    handle: None,
                },
                EdgeSpec {
                    from: "llm".into(),
                    to: "end".into(),
                    handle: None,
                },
            ],
        }
    }

    /// The pipeline of a chatbot configuration, if it has one.
    pub fn from_config(config: &Value) -> Result<Option<Pipeline>> {
        match config.get("pipeline") {
            None | Some(Value::Null) => Ok(None),
            Some(p) => serde_json::from_value(p.clone())
                .map(Some)
                .map_err(|e| invalid(format!("invalid pipeline: {e}"))),
        }
    }

    /// Checks the graph and every node's params.
    pub fn validate(&self) -> Result<ValidPipeline> {
        let mut kinds: HashMap<&str, &NodeSpec> = HashMap::new();
        for n in &self.nodes {
            if n.id.trim().is_empty() {
                return Err(invalid("every node needs a non-empty id"));
            }
            if kinds.insert(n.id.as_str(), n).is_some() {
                return Err(invalid(format!("node id {:?} is used twice", n.id)));
            }
        }
        let count = |k: &str| self.nodes.iter().filter(|n| n.kind == k).count();
        if count("start") != 1 {
            return Err(invalid("a pipeline needs exactly one start node"));
        }
        if count("end") != 1 {
            return Err(invalid("a pipeline needs exactly one end node"));
        }
        let mut parsed: HashMap<String, Node> = HashMap::new();
        let mut prompts = HashMap::new();
        for n in &self.nodes {
            let node = match n.kind.as_str() {
                "start" => Node::Start,
                "end" => Node::End,
                "llm" => {
                    let p: LlmParams = serde_json::from_value(n.params.clone())
                        .map_err(|e| invalid(format!("node {:?}: invalid params: {e}", n.id)))?;
                    if p.provider.trim().is_empty() {
                        return Err(invalid(format!("node {:?}: provider is required", n.id)));
                    }
                    if p.model.trim().is_empty() {
                        return Err(invalid(format!("node {:?}: model is required", n.id)));
                    }
                    if let Some(t) = p.temperature
                        && !(0.0..=2.0).contains(&t)
                    {
                        return Err(invalid(format!(
                            "node {:?}: temperature must be between 0 and 2",
                            n.id
                        )));
                    }
                    if p.max_tokens == Some(0) {
                        return Err(invalid(format!(
                            "node {:?}: max_tokens must be positive",
                            n.id
                        )));
                    }
                    if p.history.max_history_length == Some(0) || p.history.token_limit == Some(0) {
                        return Err(invalid(format!(
                            "node {:?}: history limits must be positive",
                            n.id
                        )));
                    }
                    let t = Template::parse(&p.prompt)
                        .map_err(|e| invalid(format!("node {:?}: {e}", n.id)))?;
                    prompts.insert(n.id.clone(), t);
                    Node::Llm(Box::new(p))
                }
                other => {
                    return Err(invalid(format!(
                        "node {:?}: unknown node type {other:?} (available: start, llm, end)",
                        n.id
                    )));
                }
            };
            parsed.insert(n.id.clone(), node);
        }
        let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut incoming: HashMap<String, Vec<EdgeSpec>> = HashMap::new();
        let mut seen_edges = HashSet::new();
        for e in &self.edges {
            for end in [&e.from, &e.to] {
                if !kinds.contains_key(end.as_str()) {
                    return Err(invalid(format!(
                        "edge {} → {} names an unknown node {end:?}",
                        e.from, e.to
                    )));
                }
            }
            if e.from == e.to {
                return Err(invalid(format!("edge {} → {} is a cycle", e.from, e.to)));
            }
            if !seen_edges.insert((e.from.as_str(), e.to.as_str(), e.handle.as_deref())) {
                return Err(invalid(format!("edge {} → {} appears twice", e.from, e.to)));
            }
            if kinds[e.to.as_str()].kind == "start" {
                return Err(invalid("the start node cannot have incoming edges"));
            }
            if kinds[e.from.as_str()].kind == "end" {
                return Err(invalid("the end node cannot have outgoing edges"));
            }
            out.entry(e.from.as_str()).or_default().push(e.to.as_str());
            incoming.entry(e.to.clone()).or_default().push(e.clone());
        }
        // Kahn's algorithm: a topological order exists iff there is no cycle.
        let mut indeg: HashMap<&str, usize> =
            self.nodes.iter().map(|n| (n.id.as_str(), 0)).collect();
        for targets in out.values() {
            for t in targets {
                *indeg.entry(t).or_default() += 1;
            }
        }
        let mut queue: VecDeque<&str> = self
            .nodes
            .iter()
            .filter(|n| indeg[n.id.as_str()] == 0)
            .map(|n| n.id.as_str())
            .collect();
        let mut order = Vec::new();
        while let Some(id) = queue.pop_front() {
            order.push(id);
            for t in out.get(id).map(Vec::as_slice).unwrap_or_default() {
                if let Some(d) = indeg.get_mut(t) {
                    *d -= 1;
                    if *d == 0 {
                        queue.push_back(t);
                    }
                }
            }
        }
        if order.len() != self.nodes.len() {
            return Err(invalid("the pipeline has a cycle"));
        }
        let start = self
            .nodes
            .iter()
            .find(|n| n.kind == "start")
            .map(|n| n.id.as_str())
            .unwrap_or("");
        let end = self
            .nodes
            .iter()
            .find(|n| n.kind == "end")
            .map(|n| n.id.as_str())
            .unwrap_or("");
        let reach_from_start = reachable(start, &out);
        let mut back: HashMap<&str, Vec<&str>> = HashMap::new();
        for (from, tos) in &out {
            for t in tos {
                back.entry(t).or_default().push(from);
            }
        }
        let reach_end = reachable(end, &back);
        for n in &self.nodes {
            if !reach_from_start.contains(n.id.as_str()) {
                return Err(invalid(format!(
                    "node {:?} is not reachable from the start node",
                    n.id
                )));
            }
            if !reach_end.contains(n.id.as_str()) {
                return Err(invalid(format!(
                    "node {:?} has no path to the end node",
                    n.id
                )));
            }
        }
        let nodes = order
            .into_iter()
            .filter_map(|id| parsed.remove(id).map(|n| (id.to_string(), n)))
            .collect();
        Ok(ValidPipeline {
            nodes,
            incoming,
            prompts,
        })
    }

    /// Provider names the pipeline's nodes use.
    pub fn providers(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.kind == "llm")
            .filter_map(|n| {
                n.params
                    .get("provider")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }
}

fn reachable<'a>(from: &'a str, edges: &HashMap<&'a str, Vec<&'a str>>) -> HashSet<&'a str> {
    let mut seen = HashSet::from([from]);
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        for t in edges.get(n).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(t) {
                stack.push(t);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Pipeline {
        serde_json::from_value(v).unwrap()
    }

    fn err(v: Value) -> String {
        match p(v).validate().unwrap_err() {
            Error::Field { field, message } if field == "pipeline" => message,
            other => panic!("{other:?}"),
        }
    }

    fn llm(id: &str) -> Value {
        json!({"id": id, "type": "llm", "params": {"provider": "p", "model": "m", "prompt": "hi {participant_data.name}"}})
    }

    #[test]
    fn single_llm_is_valid_and_ordered() {
        let v = Pipeline::single_llm("p", "m", "Be nice")
            .validate()
            .unwrap();
        let ids: Vec<&str> = v.nodes.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["start", "llm", "end"]);
    }

    #[test]
    fn graph_errors() {
        let start = json!({"id": "s", "type": "start"});
        let end = json!({"id": "e", "type": "end"});
        assert!(err(json!({"nodes": [end], "edges": []})).contains("exactly one start"));
        assert!(err(json!({"nodes": [start, start.clone()], "edges": []})).contains("used twice"));
        assert!(
            err(json!({"nodes": [start, end, llm("a")], "edges": [{"from": "s", "to": "e"}]}))
                .contains("not reachable")
        );
        assert!(err(json!({"nodes": [start, end, llm("a"), llm("b")], "edges": [
            {"from": "s", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "b", "to": "e"}]})).contains("cycle"));
        assert!(
            err(json!({"nodes": [start, end], "edges": [{"from": "s", "to": "x"}]}))
                .contains("unknown node")
        );
        assert!(err(json!({"nodes": [start, end, llm("a")], "edges": [{"from": "s", "to": "a"}, {"from": "s", "to": "e"}]})).contains("no path to the end"));
        assert!(
            err(json!({"nodes": [start, end, {"id": "r", "type": "router"}], "edges": []}))
                .contains("unknown node type")
        );
    }

    #[test]
    fn param_errors() {
        let start = json!({"id": "s", "type": "start"});
        let end = json!({"id": "e", "type": "end"});
        let with = |params: Value| {
            json!({"nodes": [start, end, {"id": "a", "type": "llm", "params": params}],
                   "edges": [{"from": "s", "to": "a"}, {"from": "a", "to": "e"}]})
        };
        assert!(
            err(with(
                json!({"provider": "p", "model": "m", "prompt": "{bogus}"})
            ))
            .contains("{bogus}")
        );
        assert!(
            err(with(
                json!({"provider": "p", "model": "m", "temperature": 3.0})
            ))
            .contains("temperature")
        );
        assert!(err(with(json!({"provider": "", "model": "m"}))).contains("provider"));
        assert!(err(with(json!({"provider": "p"}))).contains("model"));
        assert!(
            err(with(
                json!({"provider": "p", "model": "m", "history": {"mode": "forever"}})
            ))
            .contains("invalid params")
        );
    }
}
