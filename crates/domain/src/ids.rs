//! Row ids that travel between crates, as types: a session id cannot be passed
//! where a team id is expected. They are the tables' integer primary keys
//! (public UUIDs are separate fields); storage binds them as plain integers.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl From<$name> for sea_orm::Value {
            fn from(id: $name) -> Self {
                id.0.into()
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// A team (tenant): every query is scoped by one.
    TeamId
);
row_id!(
    /// A chatbot row: a working version or one of its numbered snapshots.
    ChatbotId
);
row_id!(
    /// A conversation.
    SessionId
);
row_id!(
    /// A chat identity (team, platform, identifier).
    ParticipantId
);
row_id!(
    /// A stored chat message.
    MessageId
);
row_id!(
    /// A deployment of a chatbot on a platform.
    ChannelId
);
row_id!(
    /// A user account (team members, API key owners).
    UserId
);
row_id!(
    /// A scheduled message.
    ScheduleId
);
