//! Node types and their params. Param names are the original's
//! (`keywords`, `default_keyword_index`, `tag_output_message`, `data_source`,
//! `route_key`, `template_string`, `data_schema`, `key_name`,
//! `recipient_list`, `subject`, `body`), so imported bots and the original's
//! documentation carry over. Unknown params are refused with their name.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::NodeSpec;
use crate::jinja;
use crate::prompt::{Template, VARIABLES};
use crate::text_enum::text_enum;

/// Every node type, as written in `type:`.
pub const NODE_TYPES: &[&str] = &[
    "start",
    "end",
    "llm",
    "router",
    "static_router",
    "template",
    "extract_structured_data",
    "update_participant_data",
    "send_email",
    "code",
];

/// The variables a router's prompt may use (fewer than an LLM node's).
pub const ROUTER_VARIABLES: &[&str] = &["participant_data", "temp_state", "session_state"];

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

/// Which conversation a node remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HistoryType {
    /// The session's whole transcript.
    #[default]
    Global,
    /// This node's own exchanges in the session (its inputs and outputs).
    Node,
    /// A history shared by every node that names it (`name`).
    Named,
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
    /// For `named`: the shared history's name (the original's `history_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub mode: HistoryMode,
    /// For `max_history_length`: how many messages to keep (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_history_length: Option<u32>,
    /// For `summarize` and `truncate_tokens`: the history token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_limit: Option<u32>,
}

/// Where a node's history lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    /// The session's messages.
    Session,
    /// A pipeline history of the session, by its stored name
    /// (`node:<id>` for a node's own, `named:<name>` for a shared one).
    Stored(String),
}

impl HistorySettings {
    pub fn max_length(&self) -> usize {
        self.max_history_length
            .unwrap_or(DEFAULT_MAX_HISTORY_LENGTH) as usize
    }

    pub fn token_limit(&self) -> usize {
        self.token_limit.unwrap_or(DEFAULT_TOKEN_LIMIT) as usize
    }

    /// The history a node `node_id` with these settings reads and writes.
    pub fn scope(&self, node_id: &str) -> Option<HistoryScope> {
        match self.kind {
            HistoryType::None => None,
            HistoryType::Global => Some(HistoryScope::Session),
            HistoryType::Node => Some(HistoryScope::Stored(format!("node:{node_id}"))),
            HistoryType::Named => Some(HistoryScope::Stored(format!(
                "named:{}",
                self.name.as_deref().unwrap_or_default()
            ))),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.max_history_length == Some(0) || self.token_limit == Some(0) {
            return Err("history: limits must be positive".into());
        }
        match (self.kind, self.name.as_deref().map(str::trim)) {
            (HistoryType::Named, None | Some("")) => {
                Err("history.name: a named history needs a name".into())
            }
            (HistoryType::Named, _) | (_, None) => Ok(()),
            (_, Some(_)) => Err("history.name: only a named history takes a name".into()),
        }
    }

    fn node_scoped() -> Self {
        HistorySettings {
            kind: HistoryType::Node,
            ..Default::default()
        }
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
    /// A tag put on the reply message when this node's output is the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tag: Option<String>,
    /// The original's agent tools the model may call (`AGENT_TOOLS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// The team's custom action operations the model may call, each
    /// `ACTION:OPERATION_ID` (the action's name, then the operation's id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_actions: Vec<String>,
    /// Rounds of model → tools → model before the node gives up (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_rounds: Option<u32>,
    /// Tools the provider runs itself: `web-search` (OpenAI and Anthropic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub built_in_tools: Vec<String>,
    /// Settings of built-in tools, by name (the original's `tool_config`).
    #[serde(default, skip_serializing_if = "ToolConfig::is_empty")]
    pub tool_config: ToolConfig,
}

/// Settings of the built-in tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ToolConfig {
    #[serde(
        default,
        rename = "web-search",
        skip_serializing_if = "Option::is_none"
    )]
    pub web_search: Option<WebSearchConfig>,
}

impl ToolConfig {
    fn is_empty(&self) -> bool {
        self.web_search.is_none()
    }
}

/// Anthropic's web search settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WebSearchConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
}

/// The built-in tools a node may ask its provider for.
pub const BUILT_IN_TOOLS: &[&str] = &["web-search"];

pub const DEFAULT_MAX_TOOL_ROUNDS: u32 = 10;

impl LlmParams {
    pub fn max_tool_rounds(&self) -> u32 {
        self.max_tool_rounds.unwrap_or(DEFAULT_MAX_TOOL_ROUNDS)
    }
}

/// The original's agent tools that run here, with the prompt variable each
/// needs (the original refuses a tool whose variable the prompt lacks).
pub const AGENT_TOOLS: &[(&str, Option<&str>)] = &[
    ("update-user-data", Some("participant_data")),
    ("append-to-participant-data", Some("participant_data")),
    ("increment-counter", Some("participant_data")),
    ("end-session", None),
    ("set-session-state", None),
    ("get-session-state", None),
    ("append-to-session-state", None),
    ("increment-session-state-counter", None),
    ("calculator", None),
    ("one-off-reminder", Some("current_datetime")),
    ("recurring-reminder", Some("current_datetime")),
    ("delete-reminder", Some("current_datetime")),
    ("move-scheduled-message-date", Some("current_datetime")),
];

/// The tools that read and change the participant's schedules.
pub const REMINDER_TOOLS: &[&str] = &[
    "one-off-reminder",
    "recurring-reminder",
    "delete-reminder",
    "move-scheduled-message-date",
];

/// The original's tools that do not run here yet.
pub const PENDING_TOOLS: &[&str] = &[];

fn check_tools(tools: &[String], prompt: &Template) -> Result<(), String> {
    let mut seen = Vec::new();
    for t in tools {
        if seen.contains(&t) {
            return Err(format!("params.tools: {t:?} appears twice"));
        }
        seen.push(t);
        match AGENT_TOOLS.iter().find(|(name, _)| name == t) {
            Some((_, Some(var))) if !prompt.uses(var) => {
                return Err(format!(
                    "params.tools: the {t} tool needs {{{var}}} in the prompt"
                ));
            }
            Some(_) => {}
            None if PENDING_TOOLS.contains(&t.as_str()) => {
                return Err(format!("params.tools: the {t} tool is not available yet"));
            }
            None => {
                let known: Vec<&str> = AGENT_TOOLS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "params.tools: unknown tool {t:?} (available: {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// An `ACTION:OPERATION_ID` reference split in two.
pub fn action_ref(r: &str) -> Option<(&str, &str)> {
    r.split_once(':')
        .filter(|(a, o)| !a.trim().is_empty() && !o.trim().is_empty())
}

/// The form of `custom_actions`; whether the team has them is checked where
/// the team's actions are known (`chatbots`).
fn check_custom_actions(refs: &[String]) -> Result<(), String> {
    for (i, r) in refs.iter().enumerate() {
        if action_ref(r).is_none() {
            return Err(format!(
                "params.custom_actions: {r:?} must look like ACTION:OPERATION_ID"
            ));
        }
        if refs[..i].contains(r) {
            return Err(format!("params.custom_actions: {r:?} appears twice"));
        }
    }
    Ok(())
}

/// The original's LLM Router: an LLM picks one keyword; each keyword is an
/// output handle (`output_0`, `output_1`, … in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterParams {
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    pub keywords: Vec<String>,
    #[serde(default)]
    pub default_keyword_index: usize,
    /// Tag the reply message with the chosen keyword.
    #[serde(default)]
    pub tag_output_message: bool,
    #[serde(default = "HistorySettings::node_scoped")]
    pub history: HistorySettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

text_enum!(
    /// Where a static router reads its key.
    pub enum DataSource {
        ParticipantData = "participant_data",
        TempState = "temp_state",
        SessionState = "session_state",
    }
);

/// Routes without an LLM on a value in participant data, temp state or
/// session state (`route_key` may be a dotted path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRouterParams {
    #[serde(default = "default_source")]
    pub data_source: DataSource,
    pub route_key: String,
    pub keywords: Vec<String>,
    #[serde(default)]
    pub default_keyword_index: usize,
    #[serde(default)]
    pub tag_output_message: bool,
}

fn default_source() -> DataSource {
    DataSource::ParticipantData
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateParams {
    pub template_string: String,
}

/// Extraction of a JSON shape the author describes (`data_schema`: field
/// names with a description of each, as a JSON object or its text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractParams {
    pub provider: String,
    pub model: String,
    #[serde(deserialize_with = "json_object_or_text")]
    pub data_schema: Value,
    /// `update_participant_data` only: merge the result under this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Characters per extraction call; longer inputs are split and the
    /// partial results merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<usize>,
}

pub const DEFAULT_CHUNK_SIZE: usize = 8_000;

impl ExtractParams {
    pub fn chunk_size(&self) -> usize {
        self.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE)
    }
}

fn json_object_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let v = Value::deserialize(d)?;
    let v = match v {
        Value::String(s) => serde_json::from_str(&s)
            .map_err(|e| serde::de::Error::custom(format!("data_schema is not valid JSON: {e}")))?,
        other => other,
    };
    match v {
        Value::Object(o) if !o.is_empty() => Ok(Value::Object(o)),
        _ => Err(serde::de::Error::custom(
            "data_schema must be a non-empty JSON object",
        )),
    }
}

/// Renders recipients, subject and body (Jinja) and sends the email as a
/// durable job; passes its input through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendEmailParams {
    /// Comma-separated addresses (a Jinja template).
    pub recipient_list: String,
    pub subject: String,
    #[serde(default)]
    pub body: String,
}

/// The original's default code: passes the input through.
pub const DEFAULT_CODE: &str = "def main(input: str, **kwargs) -> str:\n    return input\n";

/// A Python node: `code` defines `main(input, **kwargs)`; what it returns,
/// as text, is the node's output. The limits default to the sandbox's
/// (1 s of interpreter time, 32 MiB, 30 s wall clock) and are capped by the
/// server's maximum at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeParams {
    #[serde(default)]
    pub code: String,
    /// Tag the reply with this (the original's output message tag).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}

impl CodeParams {
    /// The source to run (the default when the node has none, as in the original).
    pub fn source(&self) -> &str {
        if self.code.trim().is_empty() {
            DEFAULT_CODE
        } else {
            &self.code
        }
    }

    /// The sandbox limits this node asks for.
    pub fn limits(&self) -> sandbox::Limits {
        let d = sandbox::Limits::default();
        sandbox::Limits {
            cpu: self
                .cpu_seconds
                .map_or(d.cpu, std::time::Duration::from_secs_f64),
            memory: self
                .memory_mb
                .map_or(d.memory, |m| usize::try_from(m << 20).unwrap_or(usize::MAX)),
            wall: self
                .wall_seconds
                .map_or(d.wall, std::time::Duration::from_secs_f64),
            ..d
        }
    }

    fn check(&self) -> Result<(), String> {
        let max = sandbox::Limits::maximum();
        let seconds = |field: &str, v: Option<f64>, max: std::time::Duration| match v {
            Some(s) if !(s > 0.0 && s <= max.as_secs_f64()) => Err(format!(
                "params.{field}: must be more than 0 and at most {}",
                max.as_secs_f64()
            )),
            _ => Ok(()),
        };
        seconds("cpu_seconds", self.cpu_seconds, max.cpu)?;
        seconds("wall_seconds", self.wall_seconds, max.wall)?;
        if let Some(m) = self.memory_mb
            && !(1..=(max.memory >> 20) as u64).contains(&m)
        {
            return Err(format!(
                "params.memory_mb: must be between 1 and {}",
                max.memory >> 20
            ));
        }
        sandbox::check(self.source()).map_err(|e| format!("params.code: {e}"))
    }
}

/// A node with its params parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Start,
    End,
    Llm(Box<LlmParams>),
    Router(Box<RouterParams>),
    StaticRouter(Box<StaticRouterParams>),
    Template(TemplateParams),
    ExtractStructuredData(Box<ExtractParams>),
    UpdateParticipantData(Box<ExtractParams>),
    SendEmail(Box<SendEmailParams>),
    Code(Box<CodeParams>),
}

fn params<T: DeserializeOwned>(v: &Value) -> Result<T, String> {
    let v = match v {
        Value::Null => Value::Object(Default::default()),
        other => other.clone(),
    };
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("params: {}", e.inner())
        } else {
            format!("params.{path}: {}", e.inner())
        }
    })
}

fn required(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("params.{field}: this field is required"));
    }
    Ok(())
}

fn temperature(t: Option<f32>) -> Result<(), String> {
    match t {
        Some(t) if !(0.0..=2.0).contains(&t) => {
            Err("params.temperature: must be between 0 and 2".into())
        }
        _ => Ok(()),
    }
}

fn keywords(list: &[String], default: usize) -> Result<(), String> {
    if list.is_empty() {
        return Err("params.keywords: a router needs at least one keyword".into());
    }
    let mut seen = Vec::new();
    for k in list {
        let k = k.trim().to_lowercase();
        if k.is_empty() {
            return Err("params.keywords: keywords cannot be blank".into());
        }
        if seen.contains(&k) {
            return Err(format!("params.keywords: {k:?} appears twice"));
        }
        seen.push(k);
    }
    if default >= list.len() {
        return Err(format!(
            "params.default_keyword_index: {default} is past the last keyword (index {})",
            list.len() - 1
        ));
    }
    Ok(())
}

fn prompt(text: &str, allowed: &[&str]) -> Result<Template, String> {
    Template::parse_for(text, allowed).map_err(|e| format!("params.prompt: {e}"))
}

fn jinja(field: &str, source: &str) -> Result<(), String> {
    jinja::check(field, source).map_err(|e| format!("params.{e}"))
}

impl Node {
    /// Parses a node's params by its type and checks them; the message names
    /// the field. Returns the node and its prompt template, if it has one.
    pub fn parse(spec: &NodeSpec) -> Result<(Node, Option<Template>), String> {
        let p = &spec.params;
        let no_params = |node: Node| match p {
            Value::Null => Ok((node, None)),
            Value::Object(o) if o.is_empty() => Ok((node, None)),
            _ => Err(format!("params: a {} node takes no params", spec.kind)),
        };
        match spec.kind.as_str() {
            "start" => no_params(Node::Start),
            "end" => no_params(Node::End),
            "llm" => {
                let l: LlmParams = params(p)?;
                required("provider", &l.provider)?;
                required("model", &l.model)?;
                temperature(l.temperature)?;
                if l.max_tokens == Some(0) {
                    return Err("params.max_tokens: must be positive".into());
                }
                l.history.check().map_err(|e| format!("params.{e}"))?;
                if l.max_tool_rounds == Some(0) {
                    return Err("params.max_tool_rounds: must be positive".into());
                }
                let t = prompt(&l.prompt, VARIABLES)?;
                check_tools(&l.tools, &t)?;
                check_custom_actions(&l.custom_actions)?;
                for b in &l.built_in_tools {
                    if !BUILT_IN_TOOLS.contains(&b.as_str()) {
                        return Err(format!(
                            "params.built_in_tools: {b:?} is not available (available: {})",
                            BUILT_IN_TOOLS.join(", ")
                        ));
                    }
                }
                if l.tool_config.web_search.is_some()
                    && !l.built_in_tools.iter().any(|b| b == "web-search")
                {
                    return Err(
                        "params.tool_config: web-search is configured but not in built_in_tools"
                            .into(),
                    );
                }
                Ok((Node::Llm(Box::new(l)), Some(t)))
            }
            "router" => {
                let r: RouterParams = params(p)?;
                required("provider", &r.provider)?;
                required("model", &r.model)?;
                temperature(r.temperature)?;
                keywords(&r.keywords, r.default_keyword_index)?;
                r.history.check().map_err(|e| format!("params.{e}"))?;
                let t = prompt(&r.prompt, ROUTER_VARIABLES)?;
                Ok((Node::Router(Box::new(r)), Some(t)))
            }
            "static_router" => {
                let r: StaticRouterParams = params(p)?;
                required("route_key", &r.route_key)?;
                keywords(&r.keywords, r.default_keyword_index)?;
                Ok((Node::StaticRouter(Box::new(r)), None))
            }
            "template" => {
                let t: TemplateParams = params(p)?;
                jinja("template_string", &t.template_string)?;
                Ok((Node::Template(t), None))
            }
            "extract_structured_data" | "update_participant_data" => {
                let x: ExtractParams = params(p)?;
                required("provider", &x.provider)?;
                required("model", &x.model)?;
                if x.chunk_size == Some(0) {
                    return Err("params.chunk_size: must be positive".into());
                }
                if spec.kind == "extract_structured_data" {
                    if x.key_name.is_some() {
                        return Err(
                            "params.key_name: only update_participant_data takes key_name".into(),
                        );
                    }
                    Ok((Node::ExtractStructuredData(Box::new(x)), None))
                } else {
                    Ok((Node::UpdateParticipantData(Box::new(x)), None))
                }
            }
            "send_email" => {
                let m: SendEmailParams = params(p)?;
                required("recipient_list", &m.recipient_list)?;
                required("subject", &m.subject)?;
                jinja("recipient_list", &m.recipient_list)?;
                jinja("subject", &m.subject)?;
                jinja("body", &m.body)?;
                Ok((Node::SendEmail(Box::new(m)), None))
            }
            "code" => {
                let c: CodeParams = params(p)?;
                c.check()?;
                Ok((Node::Code(Box::new(c)), None))
            }
            other => Err(format!(
                "unknown node type {other:?} (available: {})",
                NODE_TYPES.join(", ")
            )),
        }
    }

    /// How many output handles the node has (routers), `None` for nodes whose
    /// edges carry no handle.
    pub fn handles(&self) -> Option<usize> {
        match self {
            Node::Router(r) => Some(r.keywords.len()),
            Node::StaticRouter(r) => Some(r.keywords.len()),
            _ => None,
        }
    }

    /// The provider the node calls, if it calls one.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Node::Llm(p) => Some(&p.provider),
            Node::Router(p) => Some(&p.provider),
            Node::ExtractStructuredData(p) | Node::UpdateParticipantData(p) => Some(&p.provider),
            _ => None,
        }
    }

    /// The history settings of a node that keeps a conversation.
    pub fn history(&self) -> Option<&HistorySettings> {
        match self {
            Node::Llm(p) => Some(&p.history),
            Node::Router(p) => Some(&p.history),
            _ => None,
        }
    }
}

/// The handle of a router's `index`-th keyword.
pub fn handle(index: usize) -> String {
    format!("output_{index}")
}
