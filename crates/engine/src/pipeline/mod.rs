//! Runs a validated pipeline as the original does: one shared state flows
//! through the graph; a node runs once every node before it has run or been
//! passed over, and only when at least one of its incoming edges is taken
//! (a router takes the edges of the handle it chose; every other node takes
//! all of its edges). Nodes that become ready together run concurrently.
//! A node with several incoming edges receives every input (`input` is them
//! joined by a blank line, `node_inputs` the list). Start passes the user's
//! message through; End's input is the reply.
//!
//! State changes (participant data, node histories, reply tags) are
//! collected here and written by the turn's one transaction, so a node that
//! fails leaves nothing half-applied; the failure names the node, and the
//! trace keeps a span for every node that ran.

mod code;
mod code_http;
mod email;
mod extract;
mod llm_node;
mod routers;
mod state;
mod template;

use std::collections::HashMap;
use std::time::Instant;

use domain::histories::HistoryWrite;
use domain::messages::StoredMessage;
use domain::pipeline::{Node, ValidNode, ValidPipeline};
use domain::pricing::ServiceKind;
use domain::prompt::PromptContext;
use domain::traces::Span;
use domain::turns::{TurnChanges, UsageItem};
use domain::{MessageId, SessionId, TeamId};
use futures_util::future::join_all;
use llm::Completion;
use serde_json::Value;
use tokio::sync::mpsc;

pub use state::lookup;

use crate::{Engine, TurnError};

/// Who the participant is, for templates (`participant_details`,
/// `participant_schedules`).
#[derive(Debug, Clone, Default)]
pub struct Participant {
    pub identifier: String,
    pub platform: String,
    pub schedules: Value,
}

pub struct RunInput<'a> {
    pub team_id: TeamId,
    /// The session whose node histories are read (none for a dry run).
    pub session_id: Option<SessionId>,
    pub pipeline: &'a ValidPipeline,
    pub input: String,
    pub input_message_id: Option<MessageId>,
    /// The session's messages before the input (global history).
    pub history: &'a [StoredMessage],
    /// Participant data, session state and the day for prompts.
    pub prompt: PromptContext,
    pub participant: Participant,
    /// Whose schedules reminder tools change: the participant and the chatbot family.
    pub schedules_of: Option<(domain::ParticipantId, domain::ChatbotId)>,
    /// The participant's timezone (reminder dates without an offset are local).
    pub timezone: chrono_tz::Tz,
    /// Appended to the newest user turn when a prompt uses `{current_datetime}`.
    pub exact_time: String,
    /// When set, the reply streams here as the provider produces it.
    pub stream: Option<mpsc::Sender<String>>,
    /// A snapshot's frozen custom action operations (`None`: read them live).
    pub actions: Option<&'a domain::actions::Snapshot>,
    /// The catalog count the turn read when it began: providers then come
    /// from the catalog (`None`: read them).
    pub epoch: Option<domain::catalog::Epoch>,
}

#[derive(Debug, Default)]
pub struct RunOutput {
    pub reply: String,
    /// Global history checkpoint: (message to hold it — `None` = the current input, summary).
    pub checkpoint: Option<(Option<i64>, String)>,
    /// Every node that ran, in the order it finished.
    pub spans: Vec<Span>,
    /// What the run changes, for the turn to write (`family_id` is the turn's to fill).
    pub changes: TurnChanges,
    /// No branch reached the end because a code node waits for the next
    /// input: the run sends no reply.
    pub waiting: bool,
    /// The participant's data as the run leaves it, when a node changed it
    /// (what `changes.participant_data` makes of the data it started from).
    pub participant_data: Option<Value>,
}

/// What the calls of these spans used, and how many there were.
pub fn spent(spans: &[Span]) -> (Vec<UsageItem>, i32) {
    (
        spans.iter().flat_map(|s| s.usage.iter().cloned()).collect(),
        spans.iter().map(|s| s.llm_calls).sum(),
    )
}

impl RunOutput {
    /// The node ids that ran, in order.
    pub fn path(&self) -> Vec<&str> {
        self.spans.iter().map(|s| s.node_id.as_str()).collect()
    }
}

/// A run that stopped: the error, the node it came from, and the spans so far.
#[derive(Debug)]
pub struct Failure {
    pub error: TurnError,
    /// `node "x" (llm)`, when a node failed.
    pub node: Option<String>,
    pub spans: Vec<Span>,
}

/// A failure before any node ran.
impl<E: Into<TurnError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            error: e.into(),
            node: None,
            spans: Vec::new(),
        }
    }
}

impl Failure {
    /// The text the trace records.
    pub fn describe(&self) -> String {
        match &self.node {
            Some(n) => format!("{n}: {}", self.error),
            None => self.error.to_string(),
        }
    }
}

/// What one node produced.
#[derive(Debug, Default)]
struct Done {
    output: String,
    /// A router's choice: (handle index, keyword).
    route: Option<(usize, String)>,
    usage: Vec<UsageItem>,
    llm_calls: i32,
    checkpoint: Option<(Option<i64>, String)>,
    history: Option<HistoryWrite>,
    participant_data: Option<Value>,
    session_state: Option<Value>,
    end_session: bool,
    reply_tags: Vec<String>,
    emails: Vec<domain::jobs::EmailPayload>,
    tool_calls: Vec<domain::traces::ToolCallTrace>,
    schedules: Vec<domain::schedules::ScheduleChange>,
    /// A code node set temp state keys (the whole temp state after it).
    temp_state: Option<Value>,
    session_tags: Vec<String>,
    files: Vec<domain::turns::GeneratedFile>,
    /// A code node's `print` output, for the trace.
    console: Option<String>,
    /// A code node ended the run: (reply, tag).
    abort: Option<(String, Option<String>)>,
    /// A code node waits for the next input: its branch ends here.
    wait: bool,
}

/// A node that failed, with what it had spent by then (its calls' usage
/// counts with the failed turn).
#[derive(Debug)]
struct NodeError {
    error: TurnError,
    spent: Done,
}

impl<E: Into<TurnError>> From<E> for NodeError {
    fn from(e: E) -> Self {
        NodeError {
            error: e.into(),
            spent: Done::default(),
        }
    }
}

/// What a node sees when it runs.
struct NodeCx<'r, 'a> {
    run: &'r RunInput<'a>,
    node: &'r ValidNode,
    input: String,
    inputs: Vec<String>,
    /// The nodes whose taken edges fed this one.
    sources: Vec<String>,
    state: &'r state::Shared,
    stream: Option<mpsc::Sender<String>>,
}

impl NodeCx<'_, '_> {
    /// Prompt variables with the state as it is when the node runs.
    fn prompt_context(&self) -> PromptContext {
        PromptContext {
            participant_data: self.state.participant_data.clone(),
            session_state: self.state.session_state.clone(),
            temp_state: self.state.temp_state.clone(),
            current_datetime: self.run.prompt.current_datetime.clone(),
        }
    }
}

/// Usage items of one completion, as the turn records them.
pub fn usage_items(provider_kind: &str, c: &Completion, requested_model: &str) -> Vec<UsageItem> {
    let model = if c.model.is_empty() {
        requested_model
    } else {
        &c.model
    };
    [
        (ServiceKind::Input, c.usage.input_tokens),
        (ServiceKind::Output, c.usage.output_tokens),
        (ServiceKind::CachedInput, c.usage.cached_input_tokens),
        (ServiceKind::CacheWrite, c.usage.cache_write_tokens),
    ]
    .into_iter()
    .filter(|(_, q)| *q > 0)
    .map(|(kind, q)| UsageItem {
        provider_kind: provider_kind.to_string(),
        model: model.to_string(),
        kind,
        quantity: i64::try_from(q).unwrap_or(i64::MAX),
    })
    .collect()
}

/// Whether a node ran (with its output and chosen route) or was passed over.
enum Decided {
    Ran {
        output: String,
        route: Option<usize>,
    },
    Skipped,
}

impl Engine {
    pub async fn run_pipeline(&self, run: RunInput<'_>) -> Result<RunOutput, Failure> {
        let pipeline = run.pipeline;
        let end = pipeline
            .end()
            .ok_or_else(|| TurnError::Config("the pipeline has no end".into()))?;
        let mut state = state::Shared::new(&run);
        let mut decided: HashMap<&str, Decided> = HashMap::new();
        let mut out = RunOutput::default();
        loop {
            let ready: Vec<&ValidNode> = pipeline
                .nodes
                .iter()
                .filter(|n| !decided.contains_key(n.id.as_str()))
                .filter(|n| {
                    pipeline
                        .incoming(&n.id)
                        .iter()
                        .all(|e| decided.contains_key(e.from.as_str()))
                })
                .collect();
            if ready.is_empty() {
                break;
            }
            let mut wave: Vec<(&ValidNode, Vec<String>)> = Vec::new();
            let mut fed_by: HashMap<&str, Vec<String>> = HashMap::new();
            for n in ready {
                let fed: Vec<(String, String)> = match n.node {
                    Node::Start => vec![(String::new(), run.input.clone())],
                    _ => pipeline
                        .incoming(&n.id)
                        .iter()
                        .filter_map(|e| match decided.get(e.from.as_str()) {
                            Some(Decided::Ran { output, route }) => {
                                let taken = match (route, &e.handle) {
                                    (Some(i), Some(h)) => *h == domain::pipeline::handle(*i),
                                    _ => true,
                                };
                                taken.then(|| (e.from.clone(), output.clone()))
                            }
                            _ => None,
                        })
                        .collect(),
                };
                if fed.is_empty() {
                    decided.insert(n.id.as_str(), Decided::Skipped);
                } else {
                    let (sources, inputs): (Vec<String>, Vec<String>) = fed.into_iter().unzip();
                    fed_by.insert(
                        n.id.as_str(),
                        sources.into_iter().filter(|s| !s.is_empty()).collect(),
                    );
                    wave.push((n, inputs));
                }
            }
            if let Some((_, inputs)) = wave.iter().find(|(n, _)| n.id == end.id) {
                out.reply = inputs.join("\n\n");
                return Ok(out);
            }
            let streaming = self.streaming_node(&run, &wave, &decided, &end.id);
            let snapshot = &state;
            let runs = wave.iter().map(|(n, inputs)| {
                let cx = NodeCx {
                    run: &run,
                    node: n,
                    input: inputs.join("\n\n"),
                    inputs: inputs.clone(),
                    sources: fed_by.get(n.id.as_str()).cloned().unwrap_or_default(),
                    state: snapshot,
                    stream: (streaming == Some(n.id.as_str()))
                        .then(|| run.stream.clone())
                        .flatten(),
                };
                async move {
                    let started = Instant::now();
                    let result = self.run_node(&cx).await;
                    (cx.input, cx.sources, result, started.elapsed())
                }
            });
            let results = join_all(runs).await;
            let mut finished = Vec::new();
            for ((n, _), (input, sources, result, took)) in wave.iter().zip(results) {
                let mut span = Span {
                    node_id: n.id.clone(),
                    node_type: n.kind.clone(),
                    input,
                    duration_ms: i64::try_from(took.as_millis()).unwrap_or(i64::MAX),
                    ..Default::default()
                };
                match result {
                    Ok(mut done) => {
                        span.output = Some(done.output.clone());
                        span.route = done.route.as_ref().map(|(_, k)| k.clone());
                        span.llm_calls = done.llm_calls;
                        span.usage = std::mem::take(&mut done.usage);
                        span.tool_calls = std::mem::take(&mut done.tool_calls);
                        span.console_output = done.console.take();
                        if done.wait {
                            span.output = None;
                        }
                        out.spans.push(span);
                        finished.push((n, sources, done));
                    }
                    Err(NodeError { error, spent }) => {
                        span.error = Some(error.to_string());
                        span.llm_calls = spent.llm_calls;
                        span.usage = spent.usage;
                        span.tool_calls = spent.tool_calls;
                        span.console_output = spent.console;
                        out.spans.push(span);
                        return Err(Failure {
                            error,
                            node: Some(format!("node {:?} ({})", n.id, n.kind)),
                            spans: out.spans,
                        });
                    }
                }
            }
            // A node that aborts ends the run with its message; what the
            // nodes before it changed stands, its own changes do not.
            if let Some((message, tag)) = finished.iter_mut().find_map(|(_, _, d)| d.abort.take()) {
                out.reply = message;
                out.changes.reply_tags.extend(tag);
                return Ok(out);
            }
            // Changes apply after the wave, in node order, so concurrent nodes saw the same state.
            for (n, sources, done) in finished {
                if out.checkpoint.is_none() {
                    out.checkpoint = done.checkpoint;
                }
                out.changes.histories.extend(done.history);
                out.changes.reply_tags.extend(done.reply_tags);
                out.changes.emails.extend(done.emails);
                if let Some(data) = done.participant_data {
                    out.changes.participant_data = domain::participants::data::DataChange::between(
                        &run.prompt.participant_data,
                        &data,
                    );
                    state.participant_data = data.clone();
                    out.participant_data = Some(data);
                }
                if let Some(s) = done.session_state {
                    if let Some(new) = s.as_object() {
                        for (k, v) in new {
                            if state.session_state.get(k) != Some(v) {
                                out.changes.session_state.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    state.session_state = s;
                }
                out.changes.end_session |= done.end_session;
                out.changes.schedules.extend(done.schedules);
                out.changes.session_tags.extend(done.session_tags);
                out.changes.files.extend(done.files);
                if let Some(t) = done.temp_state {
                    state.set_temp(t);
                }
                if done.wait {
                    out.waiting = true;
                    decided.insert(n.id.as_str(), Decided::Skipped);
                    continue;
                }
                if let Some(parent) = sources.into_iter().next() {
                    state.parents.insert(n.id.clone(), parent);
                }
                if let Some((_, keyword)) = &done.route {
                    state.routes.insert(n.id.clone(), keyword.clone());
                }
                state.record_output(&n.id, &done.output);
                decided.insert(
                    n.id.as_str(),
                    Decided::Ran {
                        output: done.output,
                        route: done.route.map(|(i, _)| i),
                    },
                );
            }
        }
        if out.waiting {
            return Ok(out);
        }
        Err(Failure {
            error: TurnError::Config("the pipeline never reached its end node".into()),
            node: None,
            spans: out.spans,
        })
    }

    /// The one LLM node of this wave whose output alone becomes the reply,
    /// if there is one: it streams to the client.
    fn streaming_node<'p>(
        &self,
        run: &RunInput<'_>,
        wave: &[(&'p ValidNode, Vec<String>)],
        decided: &HashMap<&str, Decided>,
        end: &str,
    ) -> Option<&'p str> {
        run.stream.as_ref()?;
        let feeds_end: Vec<&str> = run
            .pipeline
            .incoming(end)
            .iter()
            .map(|e| e.from.as_str())
            .collect();
        let candidates: Vec<&'p ValidNode> = wave
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| feeds_end.contains(&n.id.as_str()))
            .collect();
        let [only] = candidates.as_slice() else {
            return None;
        };
        let others_passed_over = feeds_end
            .iter()
            .filter(|id| **id != only.id)
            .all(|id| matches!(decided.get(id), Some(Decided::Skipped)));
        (matches!(only.node, Node::Llm(_)) && others_passed_over).then_some(only.id.as_str())
    }

    async fn run_node(&self, cx: &NodeCx<'_, '_>) -> Result<Done, NodeError> {
        Ok(match &cx.node.node {
            Node::Start | Node::End => Done {
                output: cx.input.clone(),
                ..Default::default()
            },
            Node::Llm(p) => self.llm_node(cx, p).await?,
            Node::Router(p) => self.llm_router(cx, p).await?,
            Node::StaticRouter(p) => routers::static_route(cx, p),
            Node::Template(p) => template::render(cx, p)?,
            Node::ExtractStructuredData(p) => {
                let (data, done) = self.extract(cx, p).await?;
                Done {
                    output: data.to_string(),
                    ..done
                }
            }
            Node::UpdateParticipantData(p) => {
                let (data, done) = self.extract(cx, p).await?;
                Done {
                    output: cx.input.clone(),
                    participant_data: Some(extract::merged(
                        &cx.state.participant_data,
                        data,
                        p.key_name.as_deref(),
                    )),
                    ..done
                }
            }
            Node::SendEmail(p) => email::render(cx, p)?,
            Node::Code(p) => self.code_node(cx, p).await?,
        })
    }
}
