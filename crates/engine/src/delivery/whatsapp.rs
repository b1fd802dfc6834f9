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
use domain::channels::push::PushChannel;
use domain::messaging::{self, Credentials};

use super::{DeliveryError, Recipient};
use crate::Engine;

/// How long after the participant last wrote free-form messages may go.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);

impl Engine {
    pub(super) async fn send_whatsapp(
        &self,
        ch: &PushChannel,
        to: &Recipient<'_>,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let provider = match ch.messaging_provider_id {
            Some(id) => messaging::access(&self.domain, &self.domain.secrets, id)
                .await
                .map_err(super::retry)?,
            None => None,
        }
        .ok_or_else(|| {
            DeliveryError::Final("the channel's messaging provider was removed".into())
        })?;
        match provider.credentials {
            Credentials::MetaCloudApi {
                access_token,
                template_language_code,
                ..
            } => {
                let phone_number_id = ch.address.as_deref().unwrap_or_default();
                let meta = MetaCloud::new(
                    &self.settings.meta_api_url,
                    access_token,
                    phone_number_id,
                    self.http.clone(),
                );
                // Meta names people by their digits (`wa_id`).
                let number = to.address.trim_start_matches('+');
                let open = self
                    .last_inbound(ch, to)
                    .await?
                    .is_some_and(|at| Utc::now() - at < SERVICE_WINDOW);
                let sent = if open {
                    meta.send_text(number, text).await.map(drop)
                } else {
                    Err(ChannelError::ReengagementRequired(
                        "the participant last wrote more than 24 hours ago".into(),
                    ))
                };
                match sent {
                    Err(ChannelError::ReengagementRequired(_)) => {
                        meta.send_bot_message_template(number, &template_language_code, text)
                            .await?;
                        Ok(())
                    }
                    other => Ok(other?),
                }
            }
            Credentials::Twilio {
                account_sid,
                auth_token,
            } => {
                let from = ch.number().unwrap_or_default();
                let twilio = Twilio::new(
                    &self.settings.twilio_api_url,
                    account_sid,
                    auth_token,
                    from,
                    self.http.clone(),
                );
                twilio.send_text(to.address, text).await?;
                Ok(())
            }
            Credentials::Turnio { auth_token, .. } => {
                let turn = Turn::new(&self.settings.turn_api_url, auth_token, self.http.clone());
                turn.send_text(to.address.trim_start_matches('+'), text)
                    .await?;
                Ok(())
            }
        }
    }
}
