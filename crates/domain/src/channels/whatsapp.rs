//! WhatsApp (and SMS) channels: a chatbot's number, sent from with one of
//! the team's messaging providers ([`crate::messaging`]); an SMS channel is
//! a Twilio number taking text messages. The channel's address is what
//! the provider's webhook names it by: Meta's `phone_number_id`, or the
//! number itself for Twilio and Turn. Inbound messages go through
//! [`super::push::accept`].

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use store::entity::channel;
use uuid::Uuid;

use super::Platform;
use super::push::{PushChannel, from_row};
use crate::conn::{Reads, Writes};
use crate::messaging::{MessagingAccess, MessagingKind};
use crate::{Error, Result};

pub const PLATFORM: Platform = Platform::Whatsapp;

/// A phone number in E.164 (`+` and 8 to 15 digits), from how people write
/// them (spaces, dashes, dots and brackets dropped).
pub fn e164(number: &str) -> Result<String> {
    let kept: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = kept.strip_prefix('+').unwrap_or(&kept);
    let digits = digits.strip_prefix("00").unwrap_or(digits);
    if (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
    {
        Ok(format!("+{digits}"))
    } else {
        Err(Error::BadRequest(format!(
            "{number:?} is not a phone number in international format, like +27821234567"
        )))
    }
}

/// Records a WhatsApp channel for a chatbot: `number` in E.164, `address`
/// what the provider's webhook will name it by.
pub async fn add(
    db: &impl Writes,
    chatbot_id: Uuid,
    provider: &MessagingAccess,
    number: &str,
    address: &str,
) -> Result<PushChannel> {
    add_on(db, PLATFORM, chatbot_id, provider, number, address).await
}

/// Records an SMS channel: a Twilio number taking text messages.
pub async fn add_sms(
    db: &impl Writes,
    chatbot_id: Uuid,
    provider: &MessagingAccess,
    number: &str,
) -> Result<PushChannel> {
    if provider.credentials.kind() != MessagingKind::Twilio {
        return Err(Error::BadRequest(
            "SMS goes through a Twilio messaging provider".into(),
        ));
    }
    add_on(db, Platform::Sms, chatbot_id, provider, number, number).await
}

async fn add_on(
    db: &impl Writes,
    platform: Platform,
    chatbot_id: Uuid,
    provider: &MessagingAccess,
    number: &str,
    address: &str,
) -> Result<PushChannel> {
    let db = db.writer();
    let head = super::family_head(db, chatbot_id).await?;
    if head.team_id != provider.team_id.0 {
        return Err(Error::not_found(format!("no chatbot with id {chatbot_id}")));
    }
    let taken = channel::Entity::find()
        .filter(channel::Column::Platform.eq(platform))
        .filter(channel::Column::Address.eq(address))
        .filter(channel::Column::Deleted.eq(false))
        .one(db)
        .await?;
    if taken.is_some() {
        return Err(Error::Conflict(format!(
            "{number} is already connected to a chatbot"
        )));
    }
    let kind = provider.credentials.kind();
    let m = channel::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(head.team_id),
        chatbot_id: Set(Some(head.id)),
        platform: Set(platform.as_str().into()),
        name: Set(match platform {
            Platform::Sms => format!("SMS {number}"),
            _ => format!("WhatsApp {number}"),
        }),
        config: Set(
            json!({"number": number, "provider": provider.name, "provider_kind": kind.as_str()}),
        ),
        secret: Set(None),
        enabled: Set(true),
        disabled_message: Set(None),
        deleted: Set(false),
        created_at: Set(store::now()),
        key_hash: Set(None),
        messaging_provider_id: Set(Some(provider.row_id)),
        address: Set(Some(address.to_string())),
        ..Default::default()
    }
    .insert(db)
    .await?;
    from_row(m)
}

impl PushChannel {
    /// The WhatsApp number the channel answers on (E.164).
    pub fn number(&self) -> Option<&str> {
        self.config.get("number").and_then(|v| v.as_str())
    }

    /// The kind of provider a WhatsApp channel sends with.
    pub fn provider_kind(&self) -> Option<MessagingKind> {
        self.config
            .get("provider_kind")
            .and_then(|v| v.as_str())
            .and_then(MessagingKind::parse)
    }
}

/// The live WhatsApp channels at an address of one provider kind.
pub async fn by_address(
    db: &impl Reads,
    kind: MessagingKind,
    address: &str,
) -> Result<Vec<PushChannel>> {
    on_address(db, PLATFORM, kind, address).await
}

/// The live channels of a platform at an address of one provider kind.
pub async fn on_address(
    db: &impl Reads,
    platform: Platform,
    kind: MessagingKind,
    address: &str,
) -> Result<Vec<PushChannel>> {
    Ok(super::push::by_address(db, platform, address)
        .await?
        .into_iter()
        .filter(|c| c.provider_kind() == Some(kind))
        .collect())
}

/// The live WhatsApp channel of a chatbot family sent with a provider kind
/// (Turn's webhook names the chatbot).
pub async fn of_chatbot(
    db: &impl Reads,
    chatbot_id: Uuid,
    kind: MessagingKind,
) -> Result<Option<PushChannel>> {
    let head = match super::family_head(db.reader(), chatbot_id).await {
        Ok(head) => head,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let rows = channel::Entity::find()
        .filter(channel::Column::ChatbotId.eq(head.id))
        .filter(channel::Column::Platform.eq(PLATFORM))
        .filter(channel::Column::Deleted.eq(false))
        .all(db.reader())
        .await?;
    for m in rows {
        let ch = from_row(m)?;
        if ch.provider_kind() == Some(kind) {
            return Ok(Some(ch));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_e164() {
        assert_eq!(e164("+27 82 123 4567").unwrap(), "+27821234567");
        assert_eq!(e164("0027-82-123-4567").unwrap(), "+27821234567");
        assert_eq!(e164("(+1) 650.555.1234").unwrap(), "+16505551234");
        for bad in [
            "",
            "+",
            "12345",
            "+0821234567",
            "+27 82 abc",
            "+1234567890123456",
        ] {
            assert!(e164(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn whatsapp_identifiers_are_one_spelling() {
        let p = Platform::Whatsapp;
        assert_eq!(p.normalize_identifier("27821234567"), "+27821234567");
        assert_eq!(p.normalize_identifier("+27821234567"), "+27821234567");
        assert_eq!(
            p.normalize_identifier("US.13491208655302741918"),
            "US.13491208655302741918"
        );
        assert_eq!(Platform::Telegram.normalize_identifier("42"), "42");
    }
}
