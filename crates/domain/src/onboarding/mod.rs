//! What stands between a participant and the conversation: the participant
//! allowlist, conversational consent, and the seed message (a chatbot
//! configuration's `allowlist`, `consent` and `seed_message`).
//!
//! ```yaml
//! seed_message: {text: "Hello! I am your study helper."}   # or {prompt: "…"}: the LLM writes it
//! consent: {text: "Do you agree to take part?", confirmation: "Reply 1 to continue."}
//! allowlist: {identifiers: ["+15550001"], message: "This study is closed."}
//! ```
//!
//! Choices, after the original (`apps/channels/stages/core.py`):
//! - **Allowlist.** An empty or absent list is a public chatbot. Otherwise a
//!   participant is let in when their identifier is listed (compared without
//!   case, and phone numbers without spaces, dashes or brackets) or is the
//!   email of a member of the chatbot's team. Anyone else gets the list's
//!   `message` (the original's "Sorry, you are not allowed to chat to this
//!   bot" when none is set) and nothing is stored of them: no participant,
//!   session or message. It applies on every channel.
//! - **Consent** is conversational, so it runs on the channels that hold a
//!   conversation on the participant's own app (Telegram now; WhatsApp with
//!   its channel). The widget has its own page and API callers are programs:
//!   they skip it, as the original's web channel does. A new session's first
//!   message is stored, the session goes `setup` → `pending` and the bot
//!   says the consent text (and the `confirmation` after a blank line, as the
//!   original joins them). Only an affirmative reply activates the session:
//!   the original's `1`, or `yes`, `y`, `agree`, `i agree` (without case or
//!   trailing `.`/`!`), or exactly the replies `accept` lists. Anything else
//!   repeats the ask. Once accepted, the participant's first message is
//!   answered (what they asked before they were interrupted), else the seed
//!   message is said, else nothing.
//! - **Seed message**: the bot's first message in a session that begins
//!   without a question to answer: a widget session (`/api/chat/start/`),
//!   Telegram's `/start` opening a session, and consent given with no earlier
//!   question. A session opened by a participant's question answers the
//!   question instead (the API channel and the OpenAI endpoint always are), as
//!   in the original. `text` is said verbatim; `prompt` is an instruction the
//!   chatbot's LLM writes the message from, with the participant's data.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr};
use serde_json::json;
use store::entity::{message, session};

use crate::conn::Reads;
use crate::ids::{SessionId, TeamId};
use crate::jobs::{BotSend, BotSendPayload, NewJob};
use crate::messages::{self, MessageRole};
use crate::sessions::{Session, SessionStatus};
use crate::{Error, Result, Tx};

pub mod config;

use config::blank;
pub use config::{
    Allowlist, CONFIG_KEYS, Consent, DEFAULT_ACCEPT, NOT_ALLOWED, Onboarding, Seed, of_config,
    parse, validate,
};

/// What a participant the allowlist keeps out is told, or `None` when they
/// may chat.
pub async fn refusal(
    db: &impl Reads,
    team_id: TeamId,
    onboarding: &Onboarding,
    identifier: &str,
) -> Result<Option<String>> {
    let Some(list) = onboarding
        .allowlist
        .as_ref()
        .filter(|a| !a.identifiers.is_empty())
    else {
        return Ok(None);
    };
    if list.lists(identifier) || crate::teams::has_member_email(db, team_id, identifier).await? {
        return Ok(None);
    }
    Ok(Some(list.refusal().to_string()))
}

/// Queues the seed message of `session` (at most once per session).
pub async fn say_seed(tx: &Tx<'_>, team_id: TeamId, session: SessionId, seed: &Seed) -> Result<()> {
    let (prompt_text, message_text) = match seed {
        Seed::Text(t) => (None, Some(t.clone())),
        Seed::Prompt(p) => (Some(p.clone()), None),
    };
    tx.enqueue(
        NewJob::<BotSend>::new(BotSendPayload {
            session_id: session,
            from_event: false,
            prompt_text,
            message_text,
        })
        .team(team_id)
        .session(session)
        .idempotency_key(format!("seed:{session}")),
    )
    .await?;
    Ok(())
}

/// Where the consent flow leaves a message that was just stored.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsentStep {
    /// No consent is asked (not configured, or already given): the message
    /// is answered as usual.
    Open,
    /// The bot asked for consent with this text (stored as its message).
    Asked(String),
    /// Consent given: answer the participant's first question.
    Answer(String),
    /// Consent given with no earlier question: say the seed message.
    Seed(Seed),
    /// Consent given, and nothing to say.
    Silent,
}

/// Moves a session through `setup` → `pending` → `active` for the message
/// `text` the participant just sent (already stored, in `tx`).
pub async fn consent_step(
    tx: &Tx<'_>,
    session: &Session,
    onboarding: &Onboarding,
    text: &str,
) -> Result<ConsentStep> {
    let Some(consent) = &onboarding.consent else {
        return Ok(ConsentStep::Open);
    };
    let ask = |status: SessionStatus| async move {
        move_status(tx, session.id, status, SessionStatus::Pending).await?;
        let prompt = consent.prompt();
        messages::insert(
            tx,
            session.team_id,
            session.id,
            MessageRole::Ai,
            &prompt,
            json!({"consent_request": true}),
        )
        .await?;
        Ok::<_, Error>(ConsentStep::Asked(prompt))
    };
    match session.status {
        SessionStatus::Setup => ask(SessionStatus::Setup).await,
        SessionStatus::Pending if !consent.accepts(text) => ask(SessionStatus::Pending).await,
        SessionStatus::Pending => {
            move_status(
                tx,
                session.id,
                SessionStatus::Pending,
                SessionStatus::Active,
            )
            .await?;
            let first = message::Entity::find()
                .filter(message::Column::SessionId.eq(session.id))
                .filter(message::Column::Role.eq(MessageRole::Human))
                .order_by_asc(message::Column::Id)
                .one(&**tx)
                .await?;
            let question = first
                .map(|m| m.content)
                .filter(|q| !is_consent_token(consent, q) && !is_start(q));
            Ok(match (question, &onboarding.seed) {
                (Some(q), _) => ConsentStep::Answer(q),
                (None, Some(seed)) => ConsentStep::Seed(seed.clone()),
                (None, None) => ConsentStep::Silent,
            })
        }
        _ => Ok(ConsentStep::Open),
    }
}

/// A reply that is about consent, not a question: blank, the original's
/// `1`, or one of the chatbot's accepted replies.
fn is_consent_token(consent: &Consent, text: &str) -> bool {
    blank(text) || text.trim() == "1" || consent.accepts(text)
}

/// Telegram's `/start`: the app's way of opening a chat, not a question.
pub fn is_start(text: &str) -> bool {
    let t = text.trim();
    t == "/start" || t.starts_with("/start ") || t.starts_with("/start@")
}

async fn move_status(
    tx: &Tx<'_>,
    id: SessionId,
    from: SessionStatus,
    to: SessionStatus,
) -> Result<()> {
    let moved = crate::sessions::counts::move_status(tx, id, from, to, |q| {
        q.col_expr(session::Column::UpdatedAt, Expr::value(store::now()))
    })
    .await?;
    if moved.is_none() {
        // Another message moved it first; this one's transaction retries from the new state.
        return Err(Error::Conflict("the session changed; try again".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_setting_and_names_the_wrong_one() {
        let o = parse(&json!({
            "seed_message": {"text": "Hello!"},
            "consent": {"text": "Agree?", "confirmation": "Reply 1"},
            "allowlist": {"identifiers": ["+1 555-0001"], "message": "Closed."},
        }))
        .unwrap();
        assert_eq!(o.seed, Some(Seed::Text("Hello!".into())));
        assert_eq!(o.consent.as_ref().unwrap().prompt(), "Agree?\n\nReply 1");
        assert!(o.allowlist.as_ref().unwrap().lists("+15550001"));
        assert_eq!(
            parse(&json!({"seed_message": {"prompt": "Greet them"}}))
                .unwrap()
                .seed,
            Some(Seed::Prompt("Greet them".into()))
        );
        assert_eq!(parse(&json!({})).unwrap(), Onboarding::default());
        for (bad, says) in [
            (
                json!({"seed_message": {"text": "a", "prompt": "b"}}),
                "seed_message: give text or prompt",
            ),
            (
                json!({"seed_message": {}}),
                "seed_message: text (or prompt) must not be blank",
            ),
            (
                json!({"seed_message": {"txt": "a"}}),
                "seed_message: txt: unknown field `txt`",
            ),
            (json!({"seed_message": "hi"}), "seed_message: invalid type"),
            (json!({"consent": {}}), "consent: missing field `text`"),
            (
                json!({"consent": {"text": " "}}),
                "consent.text: must not be blank",
            ),
            (
                json!({"consent": {"text": "a", "accept": [""]}}),
                "consent.accept",
            ),
            (
                json!({"allowlist": {"identifiers": ["a", ""]}}),
                "allowlist.identifiers[1]",
            ),
            (
                json!({"allowlist": {"identifiers": "a"}}),
                "allowlist: identifiers: invalid type",
            ),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(e.starts_with(says), "{bad} → {e}");
        }
    }

    #[test]
    fn affirmative_replies() {
        let c = Consent {
            text: "Agree?".into(),
            confirmation: None,
            accept: None,
        };
        assert_eq!(c.prompt(), "Agree?");
        for yes in ["1", " 1 ", "YES", "Yes!", "y", "I agree.", "agree"] {
            assert!(c.accepts(yes), "{yes}");
        }
        for no in ["no", "2", "", "yes please", "11", "maybe"] {
            assert!(!c.accepts(no), "{no}");
        }
        let own = Consent {
            accept: Some(vec!["Sí".into()]),
            ..c
        };
        assert!(own.accepts("sí!"));
        assert!(!own.accepts("1"));
    }

    #[test]
    fn identifiers_compare_without_case_or_phone_punctuation() {
        let a = Allowlist {
            identifiers: vec![
                "+1 (555) 000-1".into(),
                "Ada@Example.org".into(),
                "42".into(),
            ],
            message: None,
        };
        assert!(a.lists("+15550001"));
        assert!(a.lists("ada@example.org"));
        assert!(a.lists(" 42 "));
        assert!(!a.lists("+15550002"));
        assert!(!a.lists("421"));
        assert_eq!(a.refusal(), NOT_ALLOWED);
    }

    #[test]
    fn start_commands() {
        assert!(is_start("/start"));
        assert!(is_start("/start ref-7"));
        assert!(!is_start("/started"));
        assert!(!is_start("start"));
    }
}
