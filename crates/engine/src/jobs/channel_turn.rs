//! `channel.turn`: a persisted inbound message on a push channel (or a fixed
//! answer: a reset, an unsupported kind): run the turn unless it already
//! ran, then deliver the reply on the session's channel.

use async_trait::async_trait;
use domain::jobs::{ChannelInput, ChannelTurn, ChannelTurnPayload};
use domain::turns;

use super::{Handler, Job, JobError, Outcome, delivered, session_of};
use crate::TurnError;

/// What the participant hears when their turn fails, rather than silence.
const TURN_FAILED: &str = "Sorry, something went wrong. Please try again.";

#[async_trait]
impl Handler for ChannelTurn {
    async fn run(job: Job<'_>, p: ChannelTurnPayload) -> Outcome<Self> {
        let (engine, domain) = (job.engine, &job.engine.domain);
        let session = session_of(engine, p.session_id).await?;
        let text = match p.input {
            ChannelInput::Reply { reply } => reply,
            ChannelInput::Message { message_id, text } => {
                match turns::finished(domain, message_id).await? {
                    Some((_, t)) => t,
                    None => {
                        let chatbot = engine
                            .published_for(&session)
                            .await
                            .map_err(JobError::from_turn)?;
                        match engine
                            .run_turn(&session, &chatbot, message_id, text, None)
                            .await
                        {
                            Ok(r) => r.text,
                            Err(TurnError::Domain(e)) if e.is_internal() => {
                                return Err(JobError::Retry(e.chain()));
                            }
                            Err(e) => {
                                if let Err(d) = engine.deliver(&session, TURN_FAILED).await {
                                    tracing::warn!(session = %session.external_id, error = ?d, "telling the participant their turn failed");
                                }
                                return Err(JobError::failed(e.public_message()));
                            }
                        }
                    }
                }
            }
        };
        engine
            .deliver(&session, &text)
            .await
            .map_err(|e| JobError::from_delivery(e, job.last))?;
        Ok(delivered())
    }
}
