//! One SeaORM entity per table. Rows stay inside the store and domain layers;
//! the API serialises its own view types.

pub mod api_key;
pub mod channel;
pub mod chatbot;
pub mod custom_action;
pub mod file;
pub mod job;
pub mod membership;
pub mod message;
pub mod message_tag;
pub mod messaging_provider;
pub mod participant;
pub mod participant_data;
pub mod pipeline_history_message;
pub mod pricing_rule;
pub mod provider;
pub mod schedule;
pub mod session;
pub mod session_file;
pub mod session_tag;
pub mod setting;
pub mod tag;
pub mod team;
pub mod timeout_timer;
pub mod trace;
pub mod usage_record;
pub mod user;
