//! Delivering stored bot messages through the session's channel, and the job
//! handlers of proactive messaging and Telegram turns.

use channels::{Channel, ChannelError};
use chrono::Utc;
use domain::conversations::{self as conv, NewSession, Session};
use domain::{schedules, telegram as tg};
use serde_json::{Value, json};

use crate::worker::Outcome;
use crate::{Engine, TurnError};

pub const BOT_SEND: &str = domain::trigger::SEND_JOB;
pub const TELEGRAM_TURN: &str = domain::telegram::TURN_JOB;

/// Why a delivery did not happen.
#[derive(Debug)]
pub enum DeliveryError {
    /// The participant blocked the bot: recorded, never retried.
    Blocked(String),
    /// Worth another attempt (platform outage, rate limit).
    Retry(String),
    /// Retrying cannot help (bad token, channel removed).
    Final(String),
}

impl Engine {
    /// Sends `text` to the session's participant on the session's channel.
    /// Widget and API sessions need no push: their clients poll.
    pub async fn deliver(&self, session: &Session, text: &str) -> Result<(), DeliveryError> {
        let db = &self.domain.db.read;
        let Some(channel_id) = session.channel_id else {
            return Ok(());
        };
        let ch = tg::by_row_id(db, channel_id)
            .await
            .map_err(|e| DeliveryError::Retry(e.to_string()))?;
        let Some(ch) = ch else { return Ok(()) };
        if !ch.enabled {
            return Ok(());
        }
        let token = ch
            .token(&self.domain.secrets)
            .map_err(|e| DeliveryError::Final(e.to_string()))?;
        let participant = conv::participant_by_id(db, session.participant_id)
            .await
            .map_err(|e| DeliveryError::Retry(e.to_string()))?
            .ok_or_else(|| DeliveryError::Final("the participant no longer exists".into()))?;
        // Blocked participants are not tried again until they write to the bot.
        if conv::is_blocked(db, session.participant_id, ch.chatbot_row_id)
            .await
            .unwrap_or(false)
        {
            return Err(DeliveryError::Blocked("blocked earlier".into()));
        }
        match self
            .telegram(&token)
            .send_text(&participant.identifier, text)
            .await
        {
            Ok(_) => Ok(()),
            Err(ChannelError::Blocked(why)) => {
                let _ = conv::mark_participant_blocked(
                    &self.domain.db.write,
                    session.team_id,
                    session.participant_id,
                    ch.chatbot_row_id,
                    &why,
                )
                .await;
                Err(DeliveryError::Blocked(why))
            }
            Err(e) if e.is_retryable() => Err(DeliveryError::Retry(e.to_string())),
            Err(e) => Err(DeliveryError::Final(e.to_string())),
        }
    }

    /// `bot.send` (trigger_bot): write or take the text, store it, deliver it.
    pub(crate) async fn job_bot_send(
        &self,
        p: &Value,
        last_attempt: bool,
    ) -> Result<Outcome, String> {
        let session_id = p
            .get("session_id")
            .and_then(Value::as_i64)
            .ok_or("payload without session_id")?;
        let db = &self.domain.db;
        let Some(session) = conv::session_by_id(&db.read, session_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Outcome::failed("the session no longer exists"));
        };
        // A retry after the message was stored only re-delivers it.
        let stored = p
            .get("stored_message")
            .and_then(Value::as_str)
            .map(str::to_string);
        let text = match stored {
            Some(t) => t,
            None => {
                let chatbot = self
                    .published_for(&session)
                    .await
                    .map_err(|e| e.to_string())?;
                let reply = self
                    .bot_message(
                        &session,
                        &chatbot,
                        p.get("prompt_text").and_then(Value::as_str),
                        p.get("message_text").and_then(Value::as_str),
                    )
                    .await;
                match reply {
                    Ok(r) => r.text,
                    Err(TurnError::Domain(domain::Error::Internal(e))) => return Err(e),
                    Err(e) => return Ok(Outcome::failed(&e.public_message())),
                }
            }
        };
        match self.deliver(&session, &text).await {
            Ok(()) => Ok(Outcome::Done(json!({"delivered": true}))),
            Err(DeliveryError::Blocked(why)) => Ok(Outcome::failed(&format!(
                "the participant blocked the bot: {why}"
            ))),
            Err(DeliveryError::Final(why)) => Ok(Outcome::failed(&why)),
            Err(DeliveryError::Retry(why)) if last_attempt => Ok(Outcome::failed(&why)),
            Err(DeliveryError::Retry(why)) => Err(why),
        }
    }

    /// `schedule.fire`: one firing of a schedule.
    pub(crate) async fn job_schedule_fire(
        &self,
        p: &Value,
        last_attempt: bool,
    ) -> Result<Outcome, String> {
        let id = p
            .get("schedule_id")
            .and_then(Value::as_i64)
            .ok_or("payload without schedule_id")?;
        let db = &self.domain.db;
        let Some(s) = schedules::get(db, id).await.map_err(|e| e.to_string())? else {
            return Ok(Outcome::Done(json!({"skipped": "schedule deleted"})));
        };
        if s.status != schedules::status::FIRING {
            // Cancelled (or already handled) after it was claimed.
            return Ok(Outcome::Done(json!({"skipped": s.status})));
        }
        let fail = async |why: &str| {
            let _ = schedules::failed(db, id, why).await;
            Ok(Outcome::failed(why))
        };
        let session = match conv::latest_session_in_family(&db.read, s.participant_id, s.chatbot_id)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(session) => session,
            None => {
                let participant = conv::participant_by_id(&db.read, s.participant_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the participant no longer exists")?;
                match conv::family_channel(&db.read, s.chatbot_id, &participant.platform)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Some((channel_id, _)) => conv::create_session(
                        &db.write,
                        NewSession {
                            team_id: s.team_id,
                            participant_id: s.participant_id,
                            chatbot_row_id: s.chatbot_id,
                            channel_id: Some(channel_id),
                            platform: Some(participant.platform.clone()),
                            version_number: 0,
                            state: json!({}),
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())?,
                    None => {
                        return fail(&format!(
                            "the participant has no session with this chatbot and the chatbot has no {} channel",
                            participant.platform
                        ))
                        .await;
                    }
                }
            }
        };
        // A retry after the message was written only re-delivers it.
        let firing = p.get("firing").and_then(Value::as_i64).unwrap_or(0);
        let text = match conv::schedule_message(&db.read, session.id, id, firing)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(t) => t,
            None => {
                let chatbot = self
                    .published_for(&session)
                    .await
                    .map_err(|e| e.to_string())?;
                match self
                    .bot_message(&session, &chatbot, Some(&s.prompt), None)
                    .await
                {
                    Ok(r) => {
                        if let Some(mid) = r.message_id {
                            conv::mark_schedule_message(&db.write, mid, id, firing)
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                        r.text
                    }
                    Err(TurnError::Domain(domain::Error::Internal(e))) => return Err(e),
                    Err(e) if last_attempt => return fail(&e.public_message()).await,
                    Err(e) => {
                        let _ = schedules::attempt_failed(db, id, &e.public_message()).await;
                        return Err(e.to_string());
                    }
                }
            }
        };
        match self.deliver(&session, &text).await {
            Ok(()) => {
                // The tick's time, not the clock's: the next occurrence follows the due
                // time the scheduler saw (tests drive that time).
                let due = p
                    .get("due_at")
                    .and_then(|v| serde_json::from_value::<chrono::DateTime<Utc>>(v.clone()).ok())
                    .unwrap_or_else(Utc::now);
                schedules::fired(db, &s, due)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Outcome::Done(
                    json!({"delivered": true, "session_id": session.id}),
                ))
            }
            Err(DeliveryError::Blocked(why)) => {
                fail(&format!("the participant blocked the bot: {why}")).await
            }
            Err(DeliveryError::Final(why)) => fail(&why).await,
            Err(DeliveryError::Retry(why)) if last_attempt => fail(&why).await,
            Err(DeliveryError::Retry(why)) => {
                let _ = schedules::attempt_failed(db, id, &why).await;
                Err(why)
            }
        }
    }

    /// `telegram.turn`: a persisted inbound message (or a command) from Telegram.
    pub(crate) async fn job_telegram_turn(
        &self,
        p: &Value,
        last_attempt: bool,
    ) -> Result<Outcome, String> {
        let session_id = p
            .get("session_id")
            .and_then(Value::as_i64)
            .ok_or("payload without session_id")?;
        let db = &self.domain.db;
        let Some(session) = conv::session_by_id(&db.read, session_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Outcome::failed("the session no longer exists"));
        };
        let text = if let Some(reply) = p.get("reply").and_then(Value::as_str) {
            reply.to_string()
        } else {
            let message_id = p
                .get("message_id")
                .and_then(Value::as_i64)
                .ok_or("payload without message_id")?;
            match conv::finished_turn(&db.read, message_id)
                .await
                .map_err(|e| e.to_string())?
            {
                Some((_, t)) => t,
                None => {
                    let chatbot = self
                        .published_for(&session)
                        .await
                        .map_err(|e| e.to_string())?;
                    let input = p
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    match self
                        .run_turn(&session, &chatbot, message_id, input, None)
                        .await
                    {
                        Ok(r) => r.text,
                        Err(TurnError::Domain(domain::Error::Internal(e))) => return Err(e),
                        Err(e) => {
                            // The participant hears that something went wrong, not silence.
                            let _ = self
                                .deliver(&session, "Sorry, something went wrong. Please try again.")
                                .await;
                            return Ok(Outcome::failed(&e.public_message()));
                        }
                    }
                }
            }
        };
        match self.deliver(&session, &text).await {
            Ok(()) => Ok(Outcome::Done(json!({"delivered": true}))),
            Err(DeliveryError::Blocked(why)) => Ok(Outcome::failed(&format!(
                "the participant blocked the bot: {why}"
            ))),
            Err(DeliveryError::Final(why)) => Ok(Outcome::failed(&why)),
            Err(DeliveryError::Retry(why)) if last_attempt => Ok(Outcome::failed(&why)),
            Err(DeliveryError::Retry(why)) => Err(why),
        }
    }
}
