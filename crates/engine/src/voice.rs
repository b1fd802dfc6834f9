//! Voice notes and files participants send on push channels: downloading
//! them through the channel's platform, transcribing voice notes and
//! speaking replies through the chatbot's voice providers
//! ([`domain::voice`]). Sending them back is delivery's.

use bytes::Bytes;
use channels::Downloaded;
use domain::channels::Platform;
use domain::channels::push::PushChannel;
use domain::jobs::InboundMedia;
use domain::voice::{Speech, Transcription};
use llm::ProviderKind;
use llm::speech::{self, Audio};

use crate::delivery::DeliveryError;
use crate::delivery::whatsapp::Provider;
use crate::{Engine, TurnError};

impl Engine {
    /// The file a participant sent, from the channel's platform.
    pub async fn fetch_media(
        &self,
        ch: &PushChannel,
        media: &InboundMedia,
    ) -> Result<Downloaded, DeliveryError> {
        match ch.platform {
            Platform::Telegram => {
                let token = ch
                    .token(&self.domain.secrets)
                    .map_err(|e| DeliveryError::Final(e.chain()))?;
                Ok(self.telegram(&token).download(&media.reference).await?)
            }
            Platform::Whatsapp | Platform::Sms => Ok(match self.whatsapp_provider(ch).await? {
                Provider::Meta { client, .. } => client.download(&media.reference).await?,
                Provider::Twilio { client, .. } => client.download(&media.reference).await?,
                Provider::Turn(turn) => turn.download(&media.reference).await?,
            }),
            other => Err(DeliveryError::Final(format!(
                "files cannot be fetched from {} channels",
                other.as_str()
            ))),
        }
    }

    async fn speech_config(
        &self,
        team: domain::TeamId,
        provider: &str,
    ) -> Result<llm::ProviderConfig, TurnError> {
        let access = self.provider_access(team, provider).await?;
        let cfg = self.provider_config(&access)?;
        if cfg.kind != ProviderKind::Openai {
            return Err(TurnError::Config(format!(
                "voice needs an OpenAI-compatible provider; {provider:?} is {}",
                access.kind
            )));
        }
        Ok(cfg)
    }

    /// The text of a voice note.
    pub async fn transcribe(
        &self,
        team: domain::TeamId,
        t: &Transcription,
        audio: Audio,
    ) -> Result<String, TurnError> {
        let cfg = self.speech_config(team, &t.provider).await?;
        let model = t
            .model
            .as_deref()
            .unwrap_or(speech::DEFAULT_TRANSCRIPTION_MODEL);
        speech::transcribe(&self.http, &cfg, model, audio)
            .await
            .map_err(TurnError::from)
    }

    /// A reply spoken, as Ogg Opus.
    pub async fn synthesize(
        &self,
        team: domain::TeamId,
        s: &Speech,
        text: &str,
    ) -> Result<Bytes, TurnError> {
        let cfg = self.speech_config(team, &s.provider).await?;
        let model = s.model.as_deref().unwrap_or(speech::DEFAULT_SPEECH_MODEL);
        let voice = s.voice.as_deref().unwrap_or(speech::DEFAULT_VOICE);
        speech::synthesize(&self.http, &cfg, model, voice, text)
            .await
            .map_err(TurnError::from)
    }
}
