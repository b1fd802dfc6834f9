//! Sending voice notes and files on push channels, where the channel can
//! carry them (its capabilities say so); callers send text otherwise.

use bytes::Bytes;
use channels::ChannelError;
use domain::channels::Platform;
use domain::channels::push::PushChannel;

use super::DeliveryError;
use super::whatsapp::Provider;
use crate::Engine;

impl Engine {
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
                    // Twilio takes media by a public URL only: the reply goes as text.
                    Provider::Twilio(_) => return Ok(false),
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
        if !ch.capabilities().files_out {
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
                    Provider::Twilio(_) => return Ok(false),
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
