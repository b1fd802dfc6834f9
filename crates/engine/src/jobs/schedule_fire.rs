//! `schedule.fire`: one firing of a schedule. The message goes to the
//! participant's latest session with the chatbot (a new one on the chatbot's
//! channel for their platform when there is none); a firing that cannot be
//! delivered is recorded on the schedule, never dropped silently.

use async_trait::async_trait;
use domain::channels;
use domain::jobs::{Delivered, ScheduleFire, ScheduleFirePayload};
use domain::messages::{self, Origin};
use domain::schedules::{self, ScheduleStatus};
use domain::sessions::{self, NewSession, Session};
use domain::{ChatbotId, ParticipantId, TeamId};
use serde_json::json;

use super::{Handler, Job, JobError, Outcome};
use crate::Engine;
use crate::delivery::DeliveryError;

#[async_trait]
impl Handler for ScheduleFire {
    async fn run(job: Job<'_>, p: ScheduleFirePayload) -> Outcome<Self> {
        let (engine, domain) = (job.engine, &job.engine.domain);
        let db = &domain.db;
        let id = p.schedule_id.0;
        let Some(s) = schedules::get(db, id).await? else {
            return Ok(skipped("schedule deleted"));
        };
        let status = schedules::status(&s)?;
        if status != ScheduleStatus::Firing {
            // Cancelled (or already handled) after it was claimed.
            return Ok(skipped(status.as_str()));
        }
        let fail = async |why: String| {
            if let Err(e) = schedules::failed(db, id, &why).await {
                tracing::error!(schedule = id, error = %e.chain(), "recording a failed firing");
            }
            JobError::failed(why)
        };
        let retry = async |why: String| {
            if let Err(e) = schedules::attempt_failed(db, id, &why).await {
                tracing::error!(schedule = id, error = %e.chain(), "recording a failed attempt");
            }
            JobError::Retry(why)
        };
        let session = match target_session(engine, &s).await? {
            Ok(session) => session,
            Err(why) => return Err(fail(why).await),
        };
        // A retry after the message was written only re-delivers it.
        let origin = Origin::Schedule {
            schedule_id: p.schedule_id,
            firing: p.firing,
        };
        let text = match messages::written_by(domain, session.id, origin).await? {
            Some(t) => t,
            None => {
                let written = async {
                    let chatbot = engine.published_for(&session).await?;
                    engine
                        .bot_message(
                            &session,
                            &chatbot,
                            Some(&s.prompt),
                            None,
                            Some(origin),
                            false,
                        )
                        .await
                };
                match written.await {
                    Ok(r) => r.text,
                    Err(e) => {
                        return Err(match JobError::from_turn(e) {
                            JobError::Failed { message, .. } if job.last => fail(message).await,
                            JobError::Failed { message, .. } => retry(message).await,
                            internal => internal,
                        });
                    }
                }
            }
        };
        match engine.deliver(&session, &text).await {
            Ok(()) => {
                // The tick's time, not the clock's: the next occurrence follows the due
                // time the scheduler saw (tests drive that time).
                schedules::fired(db, &s, p.due_at).await?;
                Ok(Delivered {
                    delivered: true,
                    session_id: Some(session.id),
                    skipped: None,
                })
            }
            Err(DeliveryError::Blocked(why)) => {
                Err(fail(format!("the participant blocked the bot: {why}")).await)
            }
            Err(DeliveryError::Final(why)) => Err(fail(why).await),
            Err(DeliveryError::Retry(why)) if job.last => Err(fail(why).await),
            Err(DeliveryError::Retry(why)) => Err(retry(why).await),
        }
    }
}

fn skipped(why: &str) -> Delivered {
    Delivered {
        delivered: false,
        session_id: None,
        skipped: Some(why.to_string()),
    }
}

/// The session a firing writes to, or why there is none.
async fn target_session(
    engine: &Engine,
    s: &schedules::Schedule,
) -> Result<Result<Session, String>, JobError> {
    let domain = &engine.domain;
    let (participant_id, family) = (ParticipantId(s.participant_id), ChatbotId(s.chatbot_id));
    if let Some(session) = sessions::latest_in_family(domain, participant_id, family).await? {
        return Ok(Ok(session));
    }
    let participant = domain::participants::get(domain, participant_id)
        .await?
        .ok_or_else(|| JobError::failed("the participant no longer exists"))?;
    let Some((channel_id, _)) =
        channels::family_channel(domain, family, participant.platform).await?
    else {
        return Ok(Err(format!(
            "the participant has no session with this chatbot and the chatbot has no {} channel",
            participant.platform
        )));
    };
    let tx = domain.begin().await?;
    let session = sessions::create(
        &tx,
        NewSession {
            team_id: TeamId(s.team_id),
            participant_id,
            chatbot_id: family,
            channel_id: Some(channel_id),
            platform: Some(participant.platform),
            version_number: 0,
            state: json!({}),
            epoch: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(session))
}
