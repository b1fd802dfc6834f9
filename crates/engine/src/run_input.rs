//! What a pipeline run reads before it starts: the participant with their
//! data and pending schedules for this chatbot, the session's state, and the
//! time in the participant's zone.

use chrono::Utc;
use domain::messages::StoredMessage;
use domain::participants::{self, data as pdata};
use domain::pipeline::ValidPipeline;
use domain::prompt::PromptContext;
use domain::{ChatbotId, MessageId, ParticipantId, SessionId, TeamId};
use serde_json::{Value, json};

use crate::pipeline::{Participant, RunInput};
use crate::{Engine, TurnError, prompt_context};

/// Where a run happens and on what.
pub struct Reading<'a> {
    pub team_id: TeamId,
    /// The session and its state (none for a dry run).
    pub session: Option<(SessionId, &'a Value)>,
    pub participant_id: Option<ParticipantId>,
    /// The chatbot family participant data and schedules belong to.
    pub family_id: ChatbotId,
    pub pipeline: &'a ValidPipeline,
    pub history: &'a [StoredMessage],
    pub input_message_id: Option<MessageId>,
    pub input: String,
    /// The version's frozen custom action operations (a snapshot's).
    pub actions: Option<&'a domain::actions::Snapshot>,
    /// The catalog count the turn read when it began, if it did.
    pub epoch: Option<domain::catalog::Epoch>,
}

impl Engine {
    pub async fn run_input<'a>(&self, r: Reading<'a>) -> Result<RunInput<'a>, TurnError> {
        let db = &self.domain;
        // Who the participant is and their schedules cost two queries: only
        // for pipelines that read them.
        let (participant, data, schedules) = match r.participant_id {
            Some(id) if r.pipeline.reads_participant() => (
                participants::get(db, id).await?,
                pdata::get(db, id, r.family_id).await?,
                domain::schedules::pending_for(db, id, r.family_id).await?,
            ),
            Some(id) => (None, pdata::get(db, id, r.family_id).await?, json!([])),
            None => (None, json!({}), json!([])),
        };
        let now = Utc::now();
        let tz = prompt_context::timezone(&data);
        let session_state = match r.session {
            Some((_, state)) if state.is_object() => state.clone(),
            _ => json!({}),
        };
        Ok(RunInput {
            team_id: r.team_id,
            session_id: r.session.map(|(id, _)| id),
            pipeline: r.pipeline,
            input: r.input,
            input_message_id: r.input_message_id,
            history: r.history,
            prompt: PromptContext {
                participant_data: data,
                session_state,
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
            actions: r.actions,
            stream: None,
            schedules_of: r.participant_id.map(|p| (p, r.family_id)),
            timezone: tz,
            epoch: r.epoch,
        })
    }
}
