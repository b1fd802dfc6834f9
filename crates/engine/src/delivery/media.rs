//! Sending voice notes and files on push channels, where the channel can
//! carry them (its capabilities say so); callers send text otherwise.

use bytes::Bytes;
use channels::ChannelError;
use domain::channels::Platform;
use domain::channels::push::{Capabilities, PushChannel};

use super::DeliveryError;
use super::whatsapp::Provider;
use crate::Engine;

impl Engine {
    /// What a channel carries from this instance (Twilio takes media by
    /// link, so it can when the public URL is known).
    pub fn capabilities(&self, ch: &PushChannel) -> Capabilities {
        ch.capabilities(self.settings.public_url.is_some())
    }

    /// A team file as Twilio takes it: by a public link.
    async fn send_by_link(
        &self,
        twilio: &channels::Twilio,
        to: &str,
        team: domain::TeamId,
        file_id: i64,
    ) -> Result<bool, DeliveryError> {
        let Some(link) = self.share_link(team, file_id)? else {
            return Ok(false);
        };
        twilio.send_media(to, &link).await?;
        Ok(true)
    }
    /// Sends Ogg Opus audio as a voice note; `false` when the channel
    /// cannot (the caller sends text instead).
    pub(super) async fn send_voice(
        &self,
        ch: &PushChannel,
        to: &str,
        audio: Bytes,
    ) -> Result<bool, DeliveryError> {
        match ch.platform {
            Platform::Telegram => {
                let token = ch
                    .token(&self.domain.secrets)
                    .map_err(|e| DeliveryError::Final(e.chain()))?;
                self.telegram(&token).send_voice(to, audio).await?;
                Ok(true)
            }
            Platform::Whatsapp => {
                let number = to.trim_start_matches('+');
                let sent = match self.whatsapp_provider(ch).await? {
                    Provider::Meta { client, .. } => client.send_voice(number, audio).await,
                    Provider::Turn(turn) => turn.send_voice(number, audio).await,
                    // Twilio takes media by a public URL: the audio is kept behind a link.
                    Provider::Twilio { client: twilio, .. } => {
                        let f = domain::files::create_shared(
                            &self.domain,
                            &self.domain.files,
                            ch.team_id,
                            "voice.ogg",
                            "audio/ogg",
                            audio,
                        )
                        .await
                        .map_err(super::retry)?;
                        return self.send_by_link(&twilio, to, ch.team_id, f.id).await;
                    }
                };
                match sent {
                    Ok(_) => Ok(true),
                    // A voice note cannot be a template: outside the window it goes as text.
                    Err(ChannelError::ReengagementRequired(_)) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(false),
        }
    }

    /// Sends a file; `false` when the channel cannot.
    pub(super) async fn send_file(
        &self,
        ch: &PushChannel,
        to: &str,
        file: &domain::messages::CarriedFile,
        bytes: Bytes,
    ) -> Result<bool, DeliveryError> {
        if !self.capabilities(ch).files_out {
            return Ok(false);
        }
        let (ct, name) = (file.content_type.as_str(), file.name.as_str());
        match ch.platform {
            Platform::Telegram => {
                let token = ch
                    .token(&self.domain.secrets)
                    .map_err(|e| DeliveryError::Final(e.chain()))?;
                self.telegram(&token).send_file(to, bytes, ct, name).await?;
                Ok(true)
            }
            Platform::Whatsapp => {
                let number = to.trim_start_matches('+');
                let sent = match self.whatsapp_provider(ch).await? {
                    Provider::Meta { client, .. } => {
                        client.send_file(number, bytes, ct, name).await
                    }
                    Provider::Turn(turn) => turn.send_file(number, bytes, ct, name).await,
                    Provider::Twilio { client: twilio, .. } => {
                        return self.send_by_link(&twilio, to, ch.team_id, file.id).await;
                    }
                };
                match sent {
                    Ok(_) => Ok(true),
                    Err(ChannelError::ReengagementRequired(_)) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(false),
        }
    }
}
