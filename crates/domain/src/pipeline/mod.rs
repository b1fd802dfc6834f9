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
//! Node types are a closed list (module `nodes`), each with its own params
//! type; `validate` checks the graph. Every error names the node and the
//! field, and unknown keys are refused with their path, so a typo in a
//! chatbot file cannot silently drop a setting.
//!
//! A router's outgoing edges carry `handle: output_N`, one per keyword in
//! order; other nodes' edges carry none.

mod nodes;
pub mod original;
mod validate;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use nodes::*;
pub use validate::{ValidNode, ValidPipeline};

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

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
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
            output_tag: None,
            tools: Vec::new(),
            custom_actions: Vec::new(),
            max_tool_rounds: None,
            built_in_tools: Vec::new(),
            tool_config: ToolConfig::default(),
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
            Some(p) => serde_path_to_error::deserialize(p.clone())
                .map(Some)
                .map_err(|e| match e.path().to_string().as_str() {
                    "." => invalid(format!("invalid pipeline: {}", e.inner())),
                    path => invalid(format!("invalid pipeline: {path}: {}", e.inner())),
                }),
        }
    }

    /// The custom action operations (`ACTION:OPERATION_ID`) its LLM nodes use.
    pub fn action_refs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in &self.nodes {
            if let Ok((Node::Llm(l), _)) = Node::parse(n) {
                for r in &l.custom_actions {
                    if !out.contains(r) {
                        out.push(r.clone());
                    }
                }
            }
        }
        out
    }

    /// Provider names the pipeline's nodes use.
    pub fn providers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in &self.nodes {
            if let Ok((node, _)) = Node::parse(n)
                && let Some(p) = node.provider()
                && !out.iter().any(|o| o == p)
            {
                out.push(p.to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
