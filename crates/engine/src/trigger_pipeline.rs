//! The `start_pipeline` action of event triggers: a pipeline runs on the
//! conversation without speaking in it. Its output is not stored as a
//! message; its trace (with usage and cost) and its state changes are
//! recorded like a turn's.

use domain::chatbots;
use domain::event_triggers::PipelineInput;
use domain::messages::{self, MessageRole, StoredMessage};
use domain::pipeline::Pipeline;
use domain::sessions::Session;
use domain::turns::{self, TurnChanges, TurnOutcome};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::pipeline::spent;
use crate::run_input::Reading;
use crate::turn::chatbot_pipeline;
use crate::{Engine, TurnError};

/// The most messages a `full_history` input carries.
const FULL_HISTORY_LIMIT: u64 = 1_000;

fn line(m: &StoredMessage) -> String {
    let who = match m.role {
        MessageRole::Human => "user",
        MessageRole::Ai => "assistant",
        MessageRole::System => "system",
    };
    format!("{who}: {}", m.content)
}

impl Engine {
    /// Runs `chatbot`'s published pipeline, or `inline`, on `session`;
    /// returns what the events log says of it.
    pub async fn start_pipeline(
        &self,
        session: &Session,
        chatbot: Option<Uuid>,
        inline: Option<&Value>,
        input: PipelineInput,
    ) -> Result<String, TurnError> {
        let db = &self.domain;
        let owner = self.published_for(session).await?;
        let runs = match chatbot {
            Some(id) => chatbots::resolve(db, session.team_id, id, Some(0)).await?,
            None => owner.clone(),
        };
        let valid = match inline {
            Some(p) => Pipeline::from_config(&json!({ "pipeline": p }))?
                .ok_or_else(|| TurnError::Config("the action's pipeline is empty".into()))?
                .validate()?,
            None => chatbot_pipeline(&runs)?,
        };
        let history = match input {
            PipelineInput::FullHistory => messages::all(db, session.id, FULL_HISTORY_LIMIT).await?,
            PipelineInput::SinceSummary | PipelineInput::LastMessage => {
                messages::history(db, session.id, None, FULL_HISTORY_LIMIT).await?
            }
        };
        let text = match input {
            PipelineInput::LastMessage => history.last().map(|m| m.content.clone()),
            _ => Some(history.iter().map(line).collect::<Vec<_>>().join("\n")),
        }
        .unwrap_or_default();
        let started = std::time::Instant::now();
        let run = self
            .run_input(Reading {
                team_id: session.team_id,
                session: Some((session.id, &session.state)),
                participant_id: Some(session.participant_id),
                family_id: owner.family_id,
                pipeline: &valid,
                history: &[],
                input_message_id: None,
                input: text,
                actions: runs.actions.as_ref(),
                epoch: None,
            })
            .await?;
        let base = TurnOutcome {
            duration_ms: 0,
            // The run is not a turn of the conversation: it raises no events.
            triggers: Vec::new(),
            ..TurnOutcome::of(session, &owner)
        };
        let (outcome, said) = match self.run_pipeline(run).await {
            Ok(out) => {
                let (usage, llm_calls) = spent(&out.spans);
                let said = format!(
                    "ran the pipeline: {}",
                    out.reply.chars().take(200).collect::<String>()
                );
                (
                    TurnOutcome {
                        usage,
                        llm_calls,
                        spans: out.spans,
                        changes: TurnChanges {
                            family_id: Some(owner.family_id),
                            ..out.changes
                        },
                        ..base
                    },
                    Ok(said),
                )
            }
            Err(f) => {
                let (usage, llm_calls) = spent(&f.spans);
                let error = f.describe();
                (
                    TurnOutcome {
                        error: Some(error),
                        usage,
                        llm_calls,
                        spans: f.spans,
                        ..base
                    },
                    Err(f.error),
                )
            }
        };
        let outcome = TurnOutcome {
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            ..outcome
        };
        turns::record(db, outcome).await?;
        said
    }
}
