//! One turn of a chatbot version run without saving anything (`chatstudio
//! chatbot test`): no session, no messages, no trace; state changes and
//! emails are reported but not applied or sent. Provider calls are real.

use domain::participants;
use domain::{TeamId, chatbots};
use uuid::Uuid;

use crate::Engine;
use crate::pipeline::{Failure, RunOutput};
use crate::run_input::Reading;
use crate::turn::chatbot_pipeline;

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
        let db = &self.domain;
        let chatbot = chatbots::resolve(db, d.team_id, d.chatbot, d.version).await?;
        let valid = chatbot_pipeline(&chatbot)?;
        let participant_id = match d.participant {
            Some(identifier) => Some(
                participants::by_identifier(db, d.team_id, identifier)
                    .await?
                    .ok_or_else(|| {
                        domain::Error::not_found(format!(
                            "no participant {identifier:?} in this team"
                        ))
                    })?
                    .id,
            ),
            None => None,
        };
        let run = self
            .run_input(Reading {
                team_id: d.team_id,
                session: None,
                participant_id,
                family_id: chatbot.family_id,
                pipeline: &valid,
                history: &[],
                input_message_id: None,
                input: d.message.to_string(),
                actions: chatbot.actions.as_ref(),
                epoch: None,
            })
            .await?;
        self.run_pipeline(run).await
    }
}
