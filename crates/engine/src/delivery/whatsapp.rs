//! Sending on WhatsApp with the channel's messaging provider.
//!
//! WhatsApp carries free-form messages only within 24 hours of the
//! participant's last message (the service window). Outside it — a
//! schedule, `trigger_bot` or an event writing to someone who has been
//! quiet — the message goes as the team's approved `new_bot_message`
//! template, as the original does; a free-form send that Meta still refuses
//! for the window (131047) is sent again as the template. Twilio and Turn
//! need templates of their own outside the window; a send they refuse for
//! it fails saying so (as in the original, which sends them plain text).

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
    Meta { client: MetaCloud, language: String },
    Twilio(Twilio),
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
            } => {
                let twilio = Twilio::new(
                    &self.settings.twilio_api_url,
                    account_sid,
                    auth_token,
                    ch.number().unwrap_or_default(),
                    self.http.clone(),
                );
                Provider::Twilio(match ch.platform {
                    Platform::Sms => twilio.sms(),
                    _ => twilio,
                })
            }
            Credentials::Turnio { auth_token, .. } => Provider::Turn(Turn::new(
                &self.settings.turn_api_url,
                auth_token,
                self.http.clone(),
            )),
        })
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
                let open = self
                    .last_inbound(ch, to)
                    .await?
                    .is_some_and(|at| Utc::now() - at < SERVICE_WINDOW);
                let sent = if open {
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
            Provider::Twilio(twilio) => {
                twilio.send_text(to.address, text).await?;
                Ok(())
            }
            Provider::Turn(turn) => {
                turn.send_text(to.address.trim_start_matches('+'), text)
                    .await?;
                Ok(())
            }
        }
    }
}
