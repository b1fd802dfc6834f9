//! `bot.send` (`trigger_bot`): write the message (or take it verbatim), store
//! it, deliver it. The stored message is marked with the task, so a retry
//! after a failed delivery re-delivers it instead of writing another.

use async_trait::async_trait;
use domain::jobs::{BotSend, BotSendPayload};
use domain::messages::{self, Origin};

use super::{Handler, Job, JobError, Outcome, delivered, session_of};

#[async_trait]
impl Handler for BotSend {
    async fn run(job: Job<'_>, p: BotSendPayload) -> Outcome<Self> {
        let (engine, domain) = (job.engine, &job.engine.domain);
        let session = session_of(engine, p.session_id).await?;
        let origin = Origin::Task(job.task_id);
        let text = match messages::written_by(domain, session.id, origin).await? {
            Some(t) => t,
            None => {
                let chatbot = engine
                    .published_for(&session)
                    .await
                    .map_err(JobError::from_turn)?;
                engine
                    .bot_message(
                        &session,
                        &chatbot,
                        p.prompt_text.as_deref(),
                        p.message_text.as_deref(),
                        Some(origin),
                        p.from_event,
                    )
                    .await
                    .map_err(JobError::from_turn)?
                    .text
            }
        };
        engine
            .deliver(&session, &text)
            .await
            .map_err(|e| JobError::from_delivery(e, job.last))?;
        Ok(delivered())
    }
}
