//! Connecting a WhatsApp number to a chatbot through one of the team's
//! messaging providers: the one path the CLI and the console share. Meta
//! knows a number by its `phone_number_id`, looked up among the business
//! account's numbers; Twilio and Turn by the number itself.

use channels::MetaCloud;
use domain::channels::whatsapp;
use domain::messaging::Credentials;
use domain::secrets::SecretBox;
use domain::{Error, Result, TeamId};
use uuid::Uuid;

/// A connected number, and where its provider must send messages.
#[derive(Debug, Clone)]
pub struct Connected {
    pub channel_id: Uuid,
    /// The number in E.164.
    pub number: String,
    /// The webhook path on this server to give the provider.
    pub webhook_path: String,
}

/// Where Meta's API is and how to reach it.
pub struct MetaApi<'a> {
    pub base_url: &'a str,
    pub http: reqwest::Client,
}

/// Connects `number` to the team's `chatbot` through its `provider`.
pub async fn whatsapp(
    db: &domain::Db,
    secrets: &SecretBox,
    meta: MetaApi<'_>,
    team: TeamId,
    chatbot: Uuid,
    (provider, number): (&str, &str),
) -> Result<Connected> {
    domain::chatbots::get(&db.read, team, chatbot).await?;
    let access = domain::messaging::by_name(&db.read, secrets, team, provider).await?;
    let number = whatsapp::e164(number)?;
    let (address, webhook_path) = match &access.credentials {
        Credentials::MetaCloudApi {
            business_id,
            access_token,
            ..
        } => {
            let client = MetaCloud::new(meta.base_url, access_token, "", meta.http);
            let id = client
                .resolve_number(business_id, &number)
                .await
                .map_err(|e| {
                    Error::BadRequest(format!("looking the number up with Meta failed: {e}"))
                })?
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "{number} is not a number of WhatsApp Business Account {business_id}"
                    ))
                })?;
            (id, "/channels/whatsapp/meta/incoming_message".to_string())
        }
        Credentials::Twilio { .. } => (number.clone(), "/channels/twilio/incoming_message".into()),
        Credentials::Turnio { .. } => (
            number.clone(),
            format!("/channels/whatsapp/turn/{chatbot}/incoming_message"),
        ),
    };
    let ch = whatsapp::add(&db.write, chatbot, &access, &number, &address).await?;
    Ok(Connected {
        channel_id: ch.id,
        number,
        webhook_path,
    })
}
