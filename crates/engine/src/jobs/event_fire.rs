//! `event.fire`: one firing of an event trigger runs its action. The job's
//! idempotency key makes the firing happen once; each action is safe to run
//! again after a crash (a schedule is keyed by the task, a prompt is one
//! `bot.send` job per task, participant data is set, an ended session stays
//! ended).

use async_trait::async_trait;
use chrono::{Duration, Utc};
use domain::event_triggers::{self, Action, period_seconds};
use domain::events::EndedBy;
use domain::jobs::{BotSend, BotSendPayload, EventFire, EventFirePayload, EventFired, NewJob};
use domain::participants::data as pdata;
use domain::schedules::{self, NewSchedule};
use domain::sessions::{self, SessionStatus};

use super::{Handler, Job, JobError, Outcome, session_of};

#[async_trait]
impl Handler for EventFire {
    async fn run(job: Job<'_>, p: EventFirePayload) -> Outcome<Self> {
        let domain = &job.engine.domain;
        let session = session_of(job.engine, p.session_id).await?;
        let done = match &p.action {
            Action::Log { message } => {
                tracing::info!(
                    session = %session.external_id,
                    on = %p.on,
                    message = %message,
                    "event trigger fired"
                );
                if message.is_empty() {
                    "logged".to_string()
                } else {
                    format!("logged: {message}")
                }
            }
            Action::EndConversation => {
                if matches!(
                    session.status,
                    SessionStatus::PendingReview | SessionStatus::Complete
                ) {
                    "the session had already ended".to_string()
                } else {
                    let mut tx = domain.begin().await?;
                    sessions::end(&mut tx, session.team_id, session.id, EndedBy::Event).await?;
                    tx.commit().await?;
                    "ended the session".to_string()
                }
            }
            Action::UpdateParticipantData { data } => {
                let family = event_triggers::family_of(domain, p.chatbot_row).await?;
                let change = pdata::DataChange {
                    set: data.clone(),
                    removed: Vec::new(),
                };
                pdata::merge(
                    domain,
                    session.team_id,
                    session.participant_id,
                    family,
                    &change,
                )
                .await?;
                let keys: Vec<&str> = data.keys().map(String::as_str).collect();
                format!("set participant data {}", keys.join(", "))
            }
            Action::PromptBot { instruction } => {
                let tx = domain.begin().await?;
                tx.enqueue(
                    NewJob::<BotSend>::new(BotSendPayload {
                        session_id: session.id,
                        from_event: true,
                        prompt_text: Some(instruction.clone()),
                        message_text: None,
                    })
                    .team(session.team_id)
                    .session(session.id)
                    .idempotency_key(format!("event-prompt:{}", job.task_id)),
                )
                .await?;
                tx.commit().await?;
                "asked the bot to message the participant".to_string()
            }
            Action::ScheduleMessage {
                name,
                prompt,
                delay_seconds,
                every,
                period,
                repetitions,
            } => {
                let family = event_triggers::family_of(domain, p.chatbot_row).await?;
                // The task's id (32 hex digits, the column's size): a retry finds its schedule.
                let external_id = job.task_id.simple().to_string();
                if schedules::by_external_id(domain, &external_id)
                    .await?
                    .is_none()
                {
                    let interval = match (every, period.as_deref()) {
                        (Some(e), Some(p)) => {
                            Some(e.saturating_mul(period_seconds(p).map_err(JobError::failed)?))
                        }
                        _ => None,
                    };
                    let wait = delay_seconds.or(interval).unwrap_or(0);
                    let n = NewSchedule {
                        team_id: session.team_id,
                        chatbot_family_id: family.0,
                        participant_id: session.participant_id.0,
                        external_id,
                        name: name.clone(),
                        prompt: prompt.clone(),
                        first_at: Utc::now() + Duration::seconds(wait),
                        interval_seconds: interval.map(|i| i32::try_from(i).unwrap_or(i32::MAX)),
                        cron: None,
                        timezone: None,
                        repetitions: match interval {
                            Some(_) => repetitions.unwrap_or(0),
                            None => 1,
                        },
                        end_date: None,
                    };
                    schedules::create_in(&domain.db.write, n)
                        .await
                        .map_err(|e| match e {
                            domain::Error::BadRequest(m) => JobError::failed(m),
                            other => JobError::from(other),
                        })?;
                }
                format!("scheduled {name:?}")
            }
            Action::StartPipeline {
                chatbot,
                pipeline,
                input,
            } => job
                .engine
                .start_pipeline(&session, *chatbot, pipeline.as_ref(), *input)
                .await
                .map_err(JobError::from_turn)?,
        };
        Ok(EventFired { done })
    }
}
