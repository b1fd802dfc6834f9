//! The LLM node, and the history every node that keeps a conversation
//! (LLM and router nodes) reads under its scope and mode.

use std::borrow::Cow;

use domain::histories::{self, HistoryWrite};
use domain::messages::StoredMessage;
use domain::pipeline::{HistoryScope, HistorySettings, LlmParams};
use futures_util::StreamExt;
use llm::{ChatMessage, CompletionRequest, LlmClient, Role, StreamEvent};

use domain::traces::ToolCallTrace;

use super::{Done, NodeCx, NodeError, usage_items};
use crate::history::{self, summary_message};
use crate::tools::actions::ActionTool;
use crate::tools::{self, Reminders, ToolState};
use crate::{Engine, TurnError};
use domain::actions::ActionAccess;
use domain::pipeline::action_ref;
use std::sync::Arc;

/// The earlier messages a node sees, and where a new summary checkpoint goes.
pub(super) struct Recalled {
    pub messages: Vec<ChatMessage>,
    pub scope: Option<HistoryScope>,
    /// A summary written for a node-scoped or named history.
    pub stored_checkpoint: Option<(Option<i64>, String)>,
}

impl Recalled {
    /// The exchange the node adds to its own or named history, if it keeps one.
    pub fn write(self, human: &str, ai: &str) -> Option<HistoryWrite> {
        match self.scope {
            Some(HistoryScope::Stored(name)) => Some(HistoryWrite {
                name,
                human: human.to_string(),
                ai: ai.to_string(),
                checkpoint: self.stored_checkpoint,
            }),
            _ => None,
        }
    }
}

/// What a node that talks to a model starts from: its provider, a client,
/// the history it recalled, and the calls that took (a summary).
pub(super) struct Conversation {
    pub access: domain::providers::ProviderAccess,
    pub client: std::sync::Arc<dyn LlmClient>,
    pub recalled: Recalled,
    pub done: Done,
}

/// The model a node calls, and its provider's kind (usage is priced by it).
#[derive(Clone, Copy)]
struct Model<'m> {
    client: &'m dyn LlmClient,
    kind: &'m str,
}

/// One call, streamed to `stream` when there is one.
async fn complete_or_stream(
    client: &dyn LlmClient,
    req: &CompletionRequest,
    stream: Option<tokio::sync::mpsc::Sender<String>>,
) -> Result<llm::Completion, TurnError> {
    let Some(tx) = stream else {
        return Ok(client.complete(req).await?);
    };
    let mut s = client.stream(req).await?;
    let mut last = None;
    while let Some(ev) = s.next().await {
        match ev? {
            StreamEvent::Delta(d) => {
                // A client that went away stops reading, not the turn.
                let _ = tx.send(d).await;
            }
            StreamEvent::Done(c) => last = Some(c),
        }
    }
    last.ok_or_else(|| {
        TurnError::Provider(llm::LlmError::InvalidResponse {
            message: "the stream ended without its final event".into(),
        })
    })
}

/// A failure after `done`'s calls: they count with the failed turn.
fn spent(error: TurnError, done: &mut Done) -> NodeError {
    NodeError {
        error,
        spent: Done {
            usage: std::mem::take(&mut done.usage),
            llm_calls: done.llm_calls,
            tool_calls: std::mem::take(&mut done.tool_calls),
            ..Default::default()
        },
    }
}

impl Engine {
    /// The model → tools → model loop of a node with tools: each round's
    /// calls run in order on the node's copy of the state, their answers
    /// (errors included) go back to the model, and usage adds up over every
    /// round. Past `max_tool_rounds` the node fails, saying so.
    async fn with_tools(
        &self,
        cx: &NodeCx<'_, '_>,
        p: &LlmParams,
        model: Model<'_>,
        req: &mut CompletionRequest,
        actions: &[ActionTool],
        done: &mut Done,
    ) -> Result<llm::Completion, NodeError> {
        let mut st = ToolState {
            participant_data: cx.state.participant_data.clone(),
            session_state: cx.state.session_state.clone(),
            participant_changed: false,
            session_changed: false,
            end_session: false,
            reminders: cx
                .run
                .schedules_of
                .map(|(participant_id, family_id)| Reminders {
                    team_id: cx.run.team_id,
                    participant_id,
                    family_id,
                    timezone: cx.run.timezone,
                    now: chrono::Utc::now(),
                    pending: cx
                        .run
                        .participant
                        .schedules
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.get("id").and_then(serde_json::Value::as_str))
                        .map(str::to_string)
                        .collect(),
                }),
            schedule_changes: Vec::new(),
        };
        let mut rounds = 0;
        let completion = loop {
            // Each round streams (text before a round's calls included) when the reply streams.
            let c = match complete_or_stream(model.client, req, cx.stream.clone()).await {
                Ok(c) => c,
                Err(error) => return Err(spent(error, done)),
            };
            done.llm_calls += 1;
            if c.tool_calls.is_empty() {
                break c;
            }
            done.usage.extend(usage_items(model.kind, &c, &p.model));
            rounds += 1;
            if rounds > p.max_tool_rounds() {
                let error = TurnError::Config(format!(
                    "the model was still calling tools after {} rounds (max_tool_rounds)",
                    p.max_tool_rounds()
                ));
                return Err(spent(error, done));
            }
            req.messages
                .push(ChatMessage::calling(c.text.clone(), c.tool_calls.clone()));
            for call in &c.tool_calls {
                let started = std::time::Instant::now();
                let action = actions.iter().find(|a| a.spec.name == call.name);
                let result = if let Some(a) = action {
                    tools::actions::call(&self.outbound, a, &call.arguments).await
                } else if p.tools.contains(&call.name) {
                    tools::run(&call.name, &call.arguments, &mut st)
                } else {
                    Err(format!("Error: the tool {:?} is not available", call.name))
                };
                let (text, is_error) = match &result {
                    Ok(t) => (t.clone(), false),
                    Err(e) => (e.clone(), true),
                };
                done.tool_calls.push(ToolCallTrace {
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    result: result.as_deref().ok().map(domain::traces::traced_text),
                    error: result
                        .as_ref()
                        .err()
                        .map(|e| domain::traces::traced_text(e)),
                    duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                });
                req.messages
                    .push(ChatMessage::tool_result(call, text, is_error));
            }
        };
        done.participant_data = st.participant_changed.then_some(st.participant_data);
        done.session_state = st.session_changed.then_some(st.session_state);
        done.end_session = st.end_session;
        done.schedules = st.schedule_changes;
        Ok(completion)
    }

    /// Opens a node's conversation: its provider and its history.
    pub(super) async fn converse(
        &self,
        cx: &NodeCx<'_, '_>,
        provider: &str,
        model: &str,
        settings: &HistorySettings,
    ) -> Result<Conversation, TurnError> {
        let (access, client) = self
            .provider_at(cx.run.epoch, cx.run.team_id, provider)
            .await?;
        let mut done = Done::default();
        let recalled = self
            .recall(
                cx,
                settings,
                model,
                client.as_ref(),
                &access.kind,
                &mut done,
            )
            .await?;
        Ok(Conversation {
            access,
            client,
            recalled,
            done,
        })
    }

    /// Loads the node's history under its settings; past the budget of
    /// `summarize`, asks the model for a summary first (counted in `done`).
    pub(super) async fn recall(
        &self,
        cx: &NodeCx<'_, '_>,
        settings: &HistorySettings,
        model: &str,
        client: &dyn LlmClient,
        provider_kind: &str,
        done: &mut Done,
    ) -> Result<Recalled, TurnError> {
        let scope = settings.scope(&cx.node.id);
        let stored: Cow<'_, [StoredMessage]> = match (&scope, cx.run.session_id) {
            (None, _) | (Some(HistoryScope::Stored(_)), None) => Cow::Owned(Vec::new()),
            (Some(HistoryScope::Session), _) => Cow::Borrowed(cx.run.history),
            (Some(HistoryScope::Stored(name)), Some(session)) => Cow::Owned(
                histories::load(&self.domain, session, name, history::load_limit(settings)).await?,
            ),
        };
        let mut recalled = Recalled {
            messages: Vec::new(),
            scope,
            stored_checkpoint: None,
        };
        if recalled.scope.is_none() {
            return Ok(recalled);
        }
        let plan = history::plan(&stored, settings);
        let Some(job) = plan.summarize else {
            recalled.messages = plan.messages;
            return Ok(recalled);
        };
        let (sys, msgs) = history::summary_request(&job);
        let req = CompletionRequest {
            model: model.to_string(),
            system: Some(sys),
            messages: msgs,
            temperature: Some(0.0),
            ..Default::default()
        };
        let c = client.complete(&req).await?;
        done.llm_calls += 1;
        done.usage.extend(usage_items(provider_kind, &c, model));
        recalled.messages.push(summary_message(&c.text));
        recalled.messages.extend(job.kept);
        let checkpoint = (job.checkpoint_at, c.text);
        match recalled.scope {
            Some(HistoryScope::Session) => done.checkpoint = Some(checkpoint),
            _ => recalled.stored_checkpoint = Some(checkpoint),
        }
        Ok(recalled)
    }

    /// The custom action operations a node may call: a snapshot's frozen
    /// shapes, else the live ones, with each action's live server and
    /// credential.
    async fn action_tools(
        &self,
        cx: &NodeCx<'_, '_>,
        refs: &[String],
    ) -> Result<Vec<ActionTool>, TurnError> {
        let mut opened: Vec<Arc<ActionAccess>> = Vec::new();
        let mut out = Vec::new();
        for r in refs {
            let (name, op_id) = action_ref(r)
                .ok_or_else(|| TurnError::Config(format!("invalid custom action {r:?}")))?;
            let action = match opened.iter().find(|a| a.name == name) {
                Some(a) => a.clone(),
                None => {
                    let d = &self.domain;
                    let a = domain::actions::access(d, &d.secrets, cx.run.team_id, name)
                        .await
                        .map_err(|e| match e {
                            domain::Error::BadRequest(m) => TurnError::Config(m),
                            other => TurnError::Domain(other),
                        })?;
                    let a = Arc::new(a);
                    opened.push(a.clone());
                    a
                }
            };
            let op = match cx.run.actions {
                Some(frozen) => frozen.get(r).cloned(),
                None => action
                    .operations
                    .iter()
                    .find(|o| o.operation_id == op_id)
                    .cloned(),
            }
            .ok_or_else(|| {
                TurnError::Config(format!(
                    "the custom action {name:?} has no operation {op_id:?}"
                ))
            })?;
            out.push(ActionTool::new(action.clone(), op));
        }
        Ok(out)
    }

    pub(super) async fn llm_node(
        &self,
        cx: &NodeCx<'_, '_>,
        p: &LlmParams,
    ) -> Result<Done, NodeError> {
        let Conversation {
            access,
            client,
            mut recalled,
            mut done,
        } = self.converse(cx, &p.provider, &p.model, &p.history).await?;
        let template = cx.node.prompt.as_ref();
        let system = template
            .map(|t| t.render(&cx.prompt_context()))
            .filter(|s| !s.is_empty());
        let actions = self
            .action_tools(cx, &p.custom_actions)
            .await
            .map_err(|error| spent(error, &mut done))?;
        let mut messages = std::mem::take(&mut recalled.messages);
        let mut user_turn = cx.input.clone();
        if template.is_some_and(|t| t.uses("current_datetime")) {
            user_turn.push_str(&format!("\n\n[Current time: {}]", cx.run.exact_time));
        }
        messages.push(ChatMessage::new(Role::User, user_turn));
        let mut req = CompletionRequest {
            model: p.model.clone(),
            system,
            messages,
            temperature: p.temperature,
            max_tokens: p.max_tokens,
            response_schema: None,
            tools: p
                .tools
                .iter()
                .filter_map(|t| tools::spec(t))
                .chain(actions.iter().map(|a| a.spec.clone()))
                .collect(),
            built_in: p
                .built_in_tools
                .iter()
                .filter(|b| b.as_str() == "web-search")
                .map(|_| {
                    let c = p.tool_config.web_search.clone().unwrap_or_default();
                    llm::BuiltInTool::WebSearch(llm::WebSearch {
                        allowed_domains: c.allowed_domains,
                        blocked_domains: c.blocked_domains,
                        max_uses: c.max_uses,
                    })
                })
                .collect(),
        };
        let completion = if req.tools.is_empty() {
            done.llm_calls += 1;
            complete_or_stream(client.as_ref(), &req, cx.stream.clone()).await?
        } else {
            let model = Model {
                client: client.as_ref(),
                kind: &access.kind,
            };
            self.with_tools(cx, p, model, &mut req, &actions, &mut done)
                .await?
        };
        done.usage
            .extend(usage_items(&access.kind, &completion, &p.model));
        done.history = recalled.write(&cx.input, &completion.text);
        done.reply_tags.extend(p.output_tag.iter().cloned());
        done.output = completion.text;
        Ok(done)
    }
}
