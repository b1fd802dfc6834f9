//! Sending on Telegram through the Bot API with the channel's bot token.

use channels::Channel;
use domain::channels::push::PushChannel;

use super::DeliveryError;
use crate::Engine;

impl Engine {
    pub(super) async fn send_telegram(
        &self,
        ch: &PushChannel,
        chat_id: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let token = ch
            .token(&self.domain.secrets)
            .map_err(|e| DeliveryError::Final(e.chain()))?;
        self.telegram(&token).send_text(chat_id, text).await?;
        Ok(())
    }
}
