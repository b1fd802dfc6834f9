//! Delivering stored bot messages through the session's channel. Widget and
//! API sessions need no push (their clients poll); Telegram is pushed.

use channels::{Channel, ChannelError};
use domain::channels::telegram as tg;
use domain::participants::{self, data as pdata};
use domain::sessions::Session;
use domain::{ChannelId, ChatbotId};

use crate::Engine;

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

fn retry(e: domain::Error) -> DeliveryError {
    DeliveryError::Retry(e.chain())
}

impl Engine {
    /// Sends `text` to the session's participant on the session's channel.
    pub async fn deliver(&self, session: &Session, text: &str) -> Result<(), DeliveryError> {
        let domain = &self.domain;
        let Some(ChannelId(channel_id)) = session.channel_id else {
            return Ok(());
        };
        let Some(ch) = tg::by_row_id(domain, channel_id).await.map_err(retry)? else {
            return Ok(());
        };
        if !ch.enabled {
            return Ok(());
        }
        let participant = participants::get(domain, session.participant_id)
            .await
            .map_err(retry)?
            .ok_or_else(|| DeliveryError::Final("the participant no longer exists".into()))?;
        let family = ChatbotId(ch.chatbot_row_id);
        // Blocked participants are not tried again until they write to the bot.
        if pdata::is_blocked(domain, session.participant_id, family)
            .await
            .map_err(retry)?
        {
            return Err(DeliveryError::Blocked("blocked earlier".into()));
        }
        match self.send_telegram(&ch, &participant.identifier, text).await {
            Err(DeliveryError::Blocked(why)) => {
                if let Err(e) = pdata::mark_blocked(
                    domain,
                    session.team_id,
                    session.participant_id,
                    family,
                    &why,
                )
                .await
                {
                    tracing::error!(session = %session.external_id, error = %e.chain(), "recording that a participant blocked the bot");
                }
                Err(DeliveryError::Blocked(why))
            }
            other => other,
        }
    }

    /// Sends `text` to a Telegram chat that has no session (a notice).
    pub async fn notify_telegram(
        &self,
        channel: ChannelId,
        chat_id: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let Some(ch) = tg::by_row_id(&self.domain, channel.0)
            .await
            .map_err(retry)?
        else {
            return Err(DeliveryError::Final("the channel no longer exists".into()));
        };
        if !ch.enabled {
            return Ok(());
        }
        self.send_telegram(&ch, chat_id, text).await
    }

    async fn send_telegram(
        &self,
        ch: &tg::TelegramChannel,
        chat_id: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let token = ch
            .token(&self.domain.secrets)
            .map_err(|e| DeliveryError::Final(e.chain()))?;
        match self.telegram(&token).send_text(chat_id, text).await {
            Ok(_) => Ok(()),
            Err(ChannelError::Blocked(why)) => Err(DeliveryError::Blocked(why)),
            Err(e) if e.is_retryable() => Err(DeliveryError::Retry(e.to_string())),
            Err(e) => Err(DeliveryError::Final(e.to_string())),
        }
    }
}
