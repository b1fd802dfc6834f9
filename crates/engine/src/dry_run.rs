//! One turn of a chatbot version run without saving anything (`chatstudio
//! chatbot test`): no session, no messages, no trace; state changes and
//! emails are reported but not applied or sent. Provider calls are real.

use chrono::Utc;
use domain::chatbots;
use domain::participants::{self, data as pdata};
use domain::prompt::PromptContext;
use domain::{TeamId, schedules};
use serde_json::json;
use uuid::Uuid;

use crate::pipeline::{Failure, Participant, RunInput, RunOutput};
use crate::turn::chatbot_pipeline;
use crate::{Engine, TurnError, prompt_context};

/// What to run: a chatbot (`version`: as the API selects it, `None` for the
/// published one), as a participant of the team (by identifier) or nobody.
pub struct DryRun<'a> {
    pub team_id: TeamId,
    pub chatbot: Uuid,
    pub version: Option<i32>,
    pub participant: Option<&'a str>,
    pub message: &'a str,
}

impl Engine {
    pub async fn dry_run(&self, d: DryRun<'_>) -> Result<RunOutput, Failure> {
        let bare = |error: TurnError| Failure {
            error,
            node: None,
            spans: Vec::new(),
        };
        let db = &self.domain;
        let chatbot = chatbots::resolve(db, d.team_id, d.chatbot, d.version)
            .await
            .map_err(|e| bare(e.into()))?;
        let valid = chatbot_pipeline(&chatbot).map_err(bare)?;
        let participant = match d.participant {
            Some(identifier) => Some(
                participants::by_identifier(db, d.team_id, identifier)
                    .await
                    .map_err(|e| bare(e.into()))?
                    .ok_or_else(|| {
                        bare(TurnError::Domain(domain::Error::not_found(format!(
                            "no participant {identifier:?} in this team"
                        ))))
                    })?,
            ),
            None => None,
        };
        let (data, schedules) = match &participant {
            Some(p) => (
                pdata::get(db, p.id, chatbot.family_id)
                    .await
                    .map_err(|e| bare(e.into()))?,
                schedules::pending_for(db, p.id, chatbot.family_id)
                    .await
                    .map_err(|e| bare(e.into()))?,
            ),
            None => (json!({}), json!([])),
        };
        let now = Utc::now();
        let tz = prompt_context::timezone(&data);
        let run = RunInput {
            team_id: d.team_id,
            session_id: None,
            pipeline: &valid,
            input: d.message.to_string(),
            input_message_id: None,
            history: &[],
            prompt: PromptContext {
                participant_data: data,
                session_state: json!({}),
                temp_state: json!({}),
                current_datetime: prompt_context::day(now, tz),
            },
            participant: Participant {
                identifier: participant
                    .as_ref()
                    .map(|p| p.identifier.clone())
                    .unwrap_or_default(),
                platform: participant
                    .as_ref()
                    .map(|p| p.platform.as_str().to_string())
                    .unwrap_or_default(),
                schedules,
            },
            exact_time: prompt_context::exact(now, tz),
            stream: None,
        };
        self.run_pipeline(run).await
    }
}
