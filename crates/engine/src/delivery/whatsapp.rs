//! Sending on WhatsApp with the channel's messaging provider.
//!
//! WhatsApp carries free-form messages only within 24 hours of the
//! participant's last message (the service window). Outside it — a
//! schedule, `trigger_bot` or an event writing to someone who has been
//! quiet — the message goes as the team's approved `new_bot_message`
//! template, as the original does; a free-form send that Meta still refuses
//! for the window (131047) is sent again as the template. Twilio does the
//! same with the team's approved Content template when its provider names
//! one; without one, and on Turn, a send refused for the window fails
//! saying so (the original sends them plain text).

use channels::{Channel, ChannelError, MetaCloud, Turn, Twilio};
use chrono::{Duration, Utc};
use domain::channels::Platform;
use domain::channels::push::PushChannel;
use domain::messaging::{self, Credentials};

use super::{DeliveryError, Recipient};
use crate::Engine;

/// How long after the participant last wrote free-form messages may go.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);

/// A client for a WhatsApp channel's number, through its provider.
pub(crate) enum Provider {
    Meta {
        client: MetaCloud,
        language: String,
    },
    Twilio {
        client: Twilio,
        /// The Content template for outside the window, if the team has one.
        template: Option<String>,
    },
    Turn(Turn),
}

impl Engine {
    pub(crate) async fn whatsapp_provider(
        &self,
        ch: &PushChannel,
    ) -> Result<Provider, DeliveryError> {
        let provider = match ch.messaging_provider_id {
            Some(id) => messaging::access(&self.domain, &self.domain.secrets, id)
                .await
                .map_err(super::retry)?,
            None => None,
        }
        .ok_or_else(|| {
            DeliveryError::Final("the channel's messaging provider was removed".into())
        })?;
        Ok(match provider.credentials {
            Credentials::MetaCloudApi {
                access_token,
                template_language_code,
                ..
            } => Provider::Meta {
                client: MetaCloud::new(
                    &self.settings.meta_api_url,
                    access_token,
                    ch.address.as_deref().unwrap_or_default(),
                    self.http.clone(),
                ),
                language: template_language_code,
            },
            Credentials::Twilio {
                account_sid,
                auth_token,
                template_content_sid,
            } => {
                let twilio = Twilio::new(
                    &self.settings.twilio_api_url,
                    account_sid,
                    auth_token,
                    ch.number().unwrap_or_default(),
                    self.http.clone(),
                );
                match ch.platform {
                    Platform::Sms => Provider::Twilio {
                        client: twilio.sms(),
                        template: None,
                    },
                    _ => Provider::Twilio {
                        client: twilio,
                        template: template_content_sid,
                    },
                }
            }
            Credentials::Turnio { auth_token, .. } => Provider::Turn(Turn::new(
                &self.settings.turn_api_url,
                auth_token,
                self.http.clone(),
            )),
        })
    }

    /// Whether the recipient wrote within the service window.
    pub(super) async fn window_open(
        &self,
        ch: &PushChannel,
        to: &Recipient<'_>,
    ) -> Result<bool, DeliveryError> {
        Ok(self
            .last_inbound(ch, to)
            .await?
            .is_some_and(|at| Utc::now() - at < SERVICE_WINDOW))
    }

    pub(super) async fn send_whatsapp(
        &self,
        ch: &PushChannel,
        to: &Recipient<'_>,
        text: &str,
    ) -> Result<(), DeliveryError> {
        match self.whatsapp_provider(ch).await? {
            Provider::Meta { client, language } => {
                // Meta names people by their digits (`wa_id`).
                let number = to.address.trim_start_matches('+');
                let sent = if self.window_open(ch, to).await? {
                    client.send_text(number, text).await.map(drop)
                } else {
                    Err(ChannelError::ReengagementRequired(
                        "the participant last wrote more than 24 hours ago".into(),
                    ))
                };
                match sent {
                    Err(ChannelError::ReengagementRequired(_)) => {
                        client
                            .send_bot_message_template(number, &language, text)
                            .await?;
                        Ok(())
                    }
                    other => Ok(other?),
                }
            }
            Provider::Twilio { client, template } => {
                let Some(template) = template else {
                    client.send_text(to.address, text).await?;
                    return Ok(());
                };
                let sent = if self.window_open(ch, to).await? {
                    client.send_text(to.address, text).await.map(drop)
                } else {
                    Err(ChannelError::ReengagementRequired(
                        "the participant last wrote more than 24 hours ago".into(),
                    ))
                };
                match sent {
                    Err(ChannelError::ReengagementRequired(_)) => {
                        client.send_template(to.address, &template, text).await?;
                        Ok(())
                    }
                    other => Ok(other?),
                }
            }
            Provider::Turn(turn) => {
                turn.send_text(to.address.trim_start_matches('+'), text)
                    .await?;
                Ok(())
            }
        }
    }
}
