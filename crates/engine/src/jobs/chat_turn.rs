//! `chat.turn`: the turn of a chat-widget message the API persisted.
//! Idempotent: a turn that already has a reply (its worker died after
//! writing it) is not run again.

use async_trait::async_trait;
use domain::jobs::{ChatTurn, ChatTurnOutput, ChatTurnPayload};
use domain::{chatbots, sessions, turns};
use tokio::sync::mpsc;

use super::{Handler, Job, JobError, Outcome};
use crate::streams::StreamMsg;

#[async_trait]
impl Handler for ChatTurn {
    async fn run(job: Job<'_>, p: ChatTurnPayload) -> Outcome<Self> {
        let (engine, domain) = (job.engine, &job.engine.domain);
        let message_id = match (p.message_id, p.refusal) {
            (_, Some(refusal)) => {
                return Ok(ChatTurnOutput {
                    response: refusal,
                    message_id: None,
                });
            }
            (Some(id), None) => id,
            (None, None) => return Err(JobError::failed("a chat turn without a message")),
        };
        if let Some((id, text)) = turns::finished(domain, message_id).await? {
            return Ok(ChatTurnOutput {
                response: text,
                message_id: Some(id),
            });
        }
        if sessions::get(domain, p.session_id).await?.is_none() {
            return Err(JobError::failed("the session no longer exists"));
        }
        if let Some(ctx) = p.context.filter(|c| !c.is_null()) {
            sessions::merge_state(domain, p.session_id, [("remote_context".into(), ctx)]).await?;
        }
        // Read after the state change: the turn sees the context it was sent with.
        let session = sessions::get(domain, p.session_id)
            .await?
            .ok_or_else(|| JobError::Retry("the session vanished".into()))?;
        let db = domain;
        let public = chatbots::public_id_of(db, session.chatbot_id.0).await?;
        let chatbot = match chatbots::resolve(
            db,
            session.team_id,
            public,
            Some(p.version.unwrap_or(0)),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                return Err(JobError::Failed {
                    message: e.to_string(),
                    user_facing: true,
                });
            }
        };
        let hub = engine.streams.open(job.task_id);
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let forward = {
            let hub = hub.clone();
            async move {
                while let Some(d) = rx.recv().await {
                    // No subscriber is fine: the poll endpoint reads the stored reply.
                    let _ = hub.send(StreamMsg::Delta(d));
                }
            }
        };
        let (result, ()) = tokio::join!(
            engine.run_turn(&session, &chatbot, message_id, p.text, Some(tx)),
            forward
        );
        engine.streams.close(job.task_id);
        let reply = result.map_err(JobError::from_turn)?;
        Ok(ChatTurnOutput {
            response: reply.text,
            message_id: reply.message_id,
        })
    }
}
