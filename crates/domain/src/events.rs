//! Domain events other features attach to (triggers, webhooks). The default
//! sink only logs; the job queue and event triggers subscribe here later.

use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ConversationEnded {
        team_id: i64,
        session_id: i64,
        ended_by: String,
    },
}

pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Logs every event at debug level.
pub struct LogSink;

impl EventSink for LogSink {
    fn emit(&self, event: Event) {
        tracing::debug!(?event, "domain event");
    }
}

/// A handle to the sink, cheap to clone.
#[derive(Clone)]
pub struct Events(pub Arc<dyn EventSink>);

impl Events {
    pub fn emit(&self, event: Event) {
        self.0.emit(event);
    }
}

impl Default for Events {
    fn default() -> Self {
        Events(Arc::new(LogSink))
    }
}
