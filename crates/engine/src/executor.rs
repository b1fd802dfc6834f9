//! Runs a validated pipeline: nodes in topological order, each node's input
//! the outputs of the nodes with edges into it (joined by a blank line when
//! several branches merge). Start passes the user's message through; End's
//! input is the reply. New node types add a match arm here and a params type
//! in `domain::pipeline`.

use std::collections::HashMap;

use domain::TeamId;
use domain::messages::StoredMessage;
use domain::pipeline::{HistoryType, LlmParams, Node, ValidPipeline};
use domain::pricing::ServiceKind;
use domain::prompt::{PromptContext, Template};
use domain::turns::UsageItem;
use futures_util::StreamExt;
use llm::{ChatMessage, Completion, CompletionRequest, Role, StreamEvent};
use tokio::sync::mpsc;

use crate::history::{self, summary_message};
use crate::{Engine, TurnError};

pub struct RunInput<'a> {
    pub team_id: TeamId,
    pub pipeline: &'a ValidPipeline,
    pub input: String,
    pub history: &'a [StoredMessage],
    pub prompt: PromptContext,
    /// Appended to the newest user turn when a prompt uses `{current_datetime}`.
    pub exact_time: String,
    /// When set, the reply streams here as the provider produces it.
    pub stream: Option<mpsc::Sender<String>>,
}

#[derive(Debug, Default)]
pub struct RunOutput {
    pub reply: String,
    pub usage: Vec<UsageItem>,
    pub llm_calls: i32,
    /// (message to hold the checkpoint — `None` = the current input, summary).
    pub checkpoint: Option<(Option<i64>, String)>,
}

fn record_usage(out: &mut RunOutput, provider: &str, c: &Completion, requested_model: &str) {
    let model = if c.model.is_empty() {
        requested_model
    } else {
        &c.model
    };
    for (kind, q) in [
        (ServiceKind::Input, c.usage.input_tokens),
        (ServiceKind::Output, c.usage.output_tokens),
        (ServiceKind::CachedInput, c.usage.cached_input_tokens),
        (ServiceKind::CacheWrite, c.usage.cache_write_tokens),
    ] {
        if q > 0 {
            out.usage.push(UsageItem {
                provider_kind: provider.to_string(),
                model: model.to_string(),
                kind,
                quantity: i64::try_from(q).unwrap_or(i64::MAX),
            });
        }
    }
}

impl Engine {
    pub async fn run_pipeline(&self, run: RunInput<'_>) -> Result<RunOutput, TurnError> {
        let mut out = RunOutput::default();
        let mut outputs: HashMap<&str, String> = HashMap::new();
        let end_inputs: Vec<&str> = run
            .pipeline
            .nodes
            .iter()
            .find(|(_, n)| matches!(n, Node::End))
            .and_then(|(id, _)| run.pipeline.incoming.get(id))
            .map(|edges| edges.iter().map(|e| e.from.as_str()).collect())
            .unwrap_or_default();
        for (id, node) in &run.pipeline.nodes {
            let input = match node {
                Node::Start => run.input.clone(),
                _ => run
                    .pipeline
                    .incoming
                    .get(id)
                    .map(|edges| {
                        edges
                            .iter()
                            .filter_map(|e| outputs.get(e.from.as_str()).cloned())
                            .collect::<Vec<_>>()
                            .join("\n\n")
                    })
                    .unwrap_or_default(),
            };
            let output = match node {
                Node::Start => input,
                Node::End => {
                    out.reply = input;
                    return Ok(out);
                }
                Node::Llm(params) => {
                    let template = run.pipeline.prompts.get(id);
                    // Only a node that feeds End directly, alone, streams to the client.
                    let stream = if end_inputs.len() == 1 && end_inputs[0] == id.as_str() {
                        run.stream.clone()
                    } else {
                        None
                    };
                    self.run_llm_node(&run, params, template, &input, stream, &mut out)
                        .await?
                }
            };
            outputs.insert(id.as_str(), output);
        }
        Err(TurnError::Config(
            "the pipeline never reached its end node".into(),
        ))
    }

    async fn run_llm_node(
        &self,
        run: &RunInput<'_>,
        params: &LlmParams,
        template: Option<&Template>,
        input: &str,
        stream: Option<mpsc::Sender<String>>,
        out: &mut RunOutput,
    ) -> Result<String, TurnError> {
        let (access, client) = self.provider(run.team_id, &params.provider).await?;
        let system = template
            .map(|t| t.render(&run.prompt))
            .filter(|s| !s.is_empty());
        let mut messages = Vec::new();
        if params.history.kind == HistoryType::Global {
            let plan = history::plan(run.history, &params.history);
            match plan.summarize {
                None => messages = plan.messages,
                Some(job) => {
                    let (sys, msgs) = history::summary_request(&job);
                    let req = CompletionRequest {
                        model: params.model.clone(),
                        system: Some(sys),
                        messages: msgs,
                        temperature: Some(0.0),
                        max_tokens: None,
                    };
                    let c = client.complete(&req).await?;
                    out.llm_calls += 1;
                    record_usage(out, &access.kind, &c, &params.model);
                    messages.push(summary_message(&c.text));
                    messages.extend(job.kept);
                    if out.checkpoint.is_none() {
                        out.checkpoint = Some((job.checkpoint_at, c.text));
                    }
                }
            }
        }
        let mut user_turn = input.to_string();
        if template.is_some_and(|t| t.uses("current_datetime")) {
            user_turn.push_str(&format!("\n\n[Current time: {}]", run.exact_time));
        }
        messages.push(ChatMessage::new(Role::User, user_turn));
        let req = CompletionRequest {
            model: params.model.clone(),
            system,
            messages,
            temperature: params.temperature,
            max_tokens: params.max_tokens,
        };
        out.llm_calls += 1;
        let completion = match stream {
            None => client.complete(&req).await?,
            Some(tx) => {
                let mut s = client.stream(&req).await?;
                let mut done = None;
                while let Some(ev) = s.next().await {
                    match ev? {
                        StreamEvent::Delta(d) => {
                            // A client that went away stops reading, not the turn.
                            let _ = tx.send(d).await;
                        }
                        StreamEvent::Done(c) => done = Some(c),
                    }
                }
                done.ok_or_else(|| {
                    TurnError::Provider(llm::LlmError::InvalidResponse {
                        message: "the stream ended without its final event".into(),
                    })
                })?
            }
        };
        record_usage(out, &access.kind, &completion, &params.model);
        Ok(completion.text)
    }
}
