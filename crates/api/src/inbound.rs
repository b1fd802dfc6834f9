//! What a platform adapter parsed, as the push channels' one inbound path
//! ([`domain::channels::push::accept`]) takes it.

use channels::InboundKind;
use domain::channels::push::{Incoming, IncomingKind};

pub fn incoming(m: channels::Inbound) -> Incoming {
    Incoming {
        event_id: m.update_id,
        // Private chats: the chat is the person (Telegram's chat id, a number).
        from: m.chat_id,
        kind: match m.kind {
            InboundKind::Text(t) => IncomingKind::text(t),
            InboundKind::Command(c) => IncomingKind::Command(c),
            InboundKind::Media(f) => IncomingKind::Media(media(f)),
            InboundKind::Unsupported(k) => IncomingKind::Unsupported(k),
        },
    }
}

/// A file named by a platform, for the push path (its kinds are the same).
fn media(m: channels::Media) -> domain::jobs::InboundMedia {
    use channels::MediaKind as C;
    use domain::jobs::MediaKind as D;
    domain::jobs::InboundMedia {
        kind: match m.kind {
            C::Voice => D::Voice,
            C::Audio => D::Audio,
            C::Image => D::Image,
            C::Document => D::Document,
            C::Video => D::Video,
        },
        reference: m.reference,
        mime_type: m.mime_type,
        file_name: m.file_name,
        caption: m.caption,
    }
}
