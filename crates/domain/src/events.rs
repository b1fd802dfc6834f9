//! Domain events other features attach to (event triggers, webhooks). Every
//! event is logged at debug level and broadcast to in-process subscribers;
//! events raised inside a transaction are held by it and emitted only once it
//! commits (see `Tx`), so nobody hears of a change that was rolled back.

use tokio::sync::broadcast;

use crate::ids::{SessionId, TeamId};
use crate::text_enum::text_enum;

text_enum!(
    /// Who ended a session, as stored in `ended_by`.
    pub enum EndedBy {
        /// The participant (a `/reset`, or `start_new_session` on their behalf).
        User = "user",
        /// A team's integration (`end_experiment_session`).
        Api = "api",
        /// The chatbot itself (its `end-session` tool, a code node's `end_session()`).
        Bot = "bot",
        /// An event trigger's `end_conversation` action.
        Event = "event",
        /// A team member (the console).
        Admin = "admin",
    }
);

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ConversationEnded {
        team_id: TeamId,
        session_id: SessionId,
        ended_by: EndedBy,
    },
}

/// A handle to the event bus, cheap to clone; clones share subscribers.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Events {
    pub fn emit(&self, event: Event) {
        tracing::debug!(?event, "domain event");
        // No subscriber is the normal case, not an error.
        let _ = self.tx.send(event);
    }

    /// Receives every event emitted from now on (a slow receiver may lag and miss some).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
        }
    }
}
