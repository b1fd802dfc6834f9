//! Delivering stored bot messages through the session's channel. Widget and
//! API sessions need no push (their clients poll); Telegram and WhatsApp
//! are pushed, each through its platform's module here. A participant who
//! blocked the bot (or cannot be reached) is recorded and not tried again
//! until they write.

mod media;
mod telegram;
pub(crate) mod whatsapp;

use channels::ChannelError;
use chrono::{DateTime, Utc};
use domain::channels::Platform;
use domain::channels::push::{self, PushChannel};
use domain::participants::{self, data as pdata};
use domain::sessions::Session;
use domain::{ChannelId, ParticipantId};

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

impl From<ChannelError> for DeliveryError {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Blocked(why) => DeliveryError::Blocked(why),
            e if e.is_retryable() => DeliveryError::Retry(e.to_string()),
            e => DeliveryError::Final(e.to_string()),
        }
    }
}

/// Who a message goes to, and what the platform needs to know of them.
pub(crate) struct Recipient<'a> {
    /// The platform's address for them (a chat id, a phone number).
    pub address: &'a str,
    /// The participant, when the message belongs to a session.
    pub participant: Option<ParticipantId>,
    /// Answering something they just sent (a notice), so WhatsApp's
    /// service window is open whatever the stored messages say.
    pub replying: bool,
}

impl Engine {
    /// The push channel a session's messages go out on and the participant's
    /// address there; `None` for sessions whose clients poll.
    async fn push_target(
        &self,
        session: &Session,
    ) -> Result<Option<(PushChannel, String)>, DeliveryError> {
        let domain = &self.domain;
        let Some(channel_id) = session.channel_id else {
            return Ok(None);
        };
        let Some(ch) = push::by_row_id(domain, channel_id).await.map_err(retry)? else {
            return Ok(None);
        };
        // A disabled channel sends nothing, bot-initiated or not.
        if !ch.enabled {
            return Err(DeliveryError::Final("the channel is disabled".into()));
        }
        let participant = participants::get(domain, session.participant_id)
            .await
            .map_err(retry)?
            .ok_or_else(|| DeliveryError::Final("the participant no longer exists".into()))?;
        // Blocked participants are not tried again until they write to the bot.
        if pdata::is_blocked(domain, session.participant_id, ch.family())
            .await
            .map_err(retry)?
        {
            return Err(DeliveryError::Blocked("blocked earlier".into()));
        }
        Ok(Some((ch, participant.identifier)))
    }

    /// Speaks `text` to the session's participant as a voice note:
    /// `false` when it cannot be (the channel carries no voice from here,
    /// WhatsApp's window has closed and only a text template may go, or the
    /// speech server failed) and the caller sends text instead. Nothing is
    /// synthesized for a channel that could not carry it.
    pub async fn deliver_spoken(
        &self,
        session: &Session,
        speech: &domain::voice::Speech,
        text: &str,
    ) -> Result<bool, DeliveryError> {
        let Some((ch, address)) = self.push_target(session).await? else {
            return Ok(false);
        };
        if !self.capabilities(&ch).voice_replies {
            return Ok(false);
        }
        let to = Recipient {
            address: &address,
            participant: Some(session.participant_id),
            replying: false,
        };
        if ch.platform == Platform::Whatsapp && !self.window_open(&ch, &to).await? {
            return Ok(false);
        }
        let audio = match self.synthesize(session.team_id, speech, text).await {
            Ok(audio) => audio,
            Err(e) => {
                tracing::warn!(session = %session.external_id, error = %e, "speaking the reply failed; sending it as text");
                return Ok(false);
            }
        };
        let sent = self.send_voice(&ch, &address, audio).await;
        self.note_blocked(session, &ch, sent).await
    }

    /// Sends the files a bot message carries, after its text, where the
    /// channel can carry them; how many went.
    pub async fn deliver_files(
        &self,
        session: &Session,
        message_id: domain::MessageId,
    ) -> Result<usize, DeliveryError> {
        let files = domain::messages::generated_files(&self.domain, message_id)
            .await
            .map_err(retry)?;
        if files.is_empty() {
            return Ok(0);
        }
        let Some((ch, address)) = self.push_target(session).await? else {
            return Ok(0);
        };
        let mut sent = 0;
        let mut links = Vec::new();
        for f in &files {
            let Some(stream) = self.domain.files.get(&f.key).await.map_err(retry)? else {
                tracing::warn!(session = %session.external_id, file = %f.name, "a reply's file is missing from the store");
                continue;
            };
            let bytes: Vec<bytes::Bytes> = futures_util::TryStreamExt::try_collect(stream)
                .await
                .map_err(|e| DeliveryError::Retry(format!("reading {}: {e}", f.name)))?;
            let bytes = bytes::Bytes::from(bytes.concat());
            let went = self.send_file(&ch, &address, f, bytes).await;
            if self.note_blocked(session, &ch, went).await? {
                sent += 1;
            } else if let Some(link) = self.share_link(session.team_id, f.id)? {
                links.push(format!("{}: {link}", f.name));
            }
        }
        // What the channel cannot carry goes as links, in one message.
        if !links.is_empty() {
            let to = Recipient {
                address: &address,
                participant: Some(session.participant_id),
                replying: false,
            };
            let text = links.join("\n");
            let went = self.send_on(&ch, &to, &text).await;
            self.note_blocked(session, &ch, went).await?;
        }
        Ok(sent)
    }

    /// A public, expiring link to a team's file; `None` without a public URL.
    fn share_link(
        &self,
        team: domain::TeamId,
        file_id: i64,
    ) -> Result<Option<String>, DeliveryError> {
        let Some(base) = &self.settings.public_url else {
            return Ok(None);
        };
        let token = domain::files::share_token(&self.domain.cursors, team, file_id, Utc::now())
            .map_err(retry)?;
        Ok(Some(format!(
            "{}/files/shared/{token}",
            base.trim_end_matches('/')
        )))
    }

    /// Sends `text` to the session's participant on the session's channel.
    pub async fn deliver(&self, session: &Session, text: &str) -> Result<(), DeliveryError> {
        let Some((ch, address)) = self.push_target(session).await? else {
            return Ok(());
        };
        let to = Recipient {
            address: &address,
            participant: Some(session.participant_id),
            replying: false,
        };
        let sent = self.send_on(&ch, &to, text).await;
        self.note_blocked(session, &ch, sent).await
    }

    /// Records a participant a send found blocked, so they are not tried again.
    async fn note_blocked<T>(
        &self,
        session: &Session,
        ch: &PushChannel,
        sent: Result<T, DeliveryError>,
    ) -> Result<T, DeliveryError> {
        let domain = &self.domain;
        let family = ch.family();
        match sent {
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

    /// Sends `text` to someone on a channel who has no session (a notice).
    /// It answers what they just sent, so it goes even on a disabled channel
    /// (its disabled message).
    pub async fn notify(
        &self,
        channel: ChannelId,
        address: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let Some(ch) = push::by_row_id(&self.domain, channel)
            .await
            .map_err(retry)?
        else {
            return Err(DeliveryError::Final("the channel no longer exists".into()));
        };
        let to = Recipient {
            address,
            participant: None,
            replying: true,
        };
        self.send_on(&ch, &to, text).await
    }

    async fn send_on(
        &self,
        ch: &PushChannel,
        to: &Recipient<'_>,
        text: &str,
    ) -> Result<(), DeliveryError> {
        match ch.platform {
            Platform::Telegram => self.send_telegram(ch, to.address, text).await,
            Platform::Whatsapp | Platform::Sms => self.send_whatsapp(ch, to, text).await,
            other => Err(DeliveryError::Final(format!(
                "nothing sends on {} channels",
                other.as_str()
            ))),
        }
    }

    /// When the recipient last wrote on the channel (`now` for a reply).
    pub(crate) async fn last_inbound(
        &self,
        ch: &PushChannel,
        to: &Recipient<'_>,
    ) -> Result<Option<DateTime<Utc>>, DeliveryError> {
        if to.replying {
            return Ok(Some(Utc::now()));
        }
        match to.participant {
            Some(p) => domain::messages::last_inbound_at(&self.domain, p, ch.channel_id())
                .await
                .map_err(retry),
            None => Ok(None),
        }
    }
}
