//! One SeaORM entity per table. Rows stay inside the store and domain layers;
//! the API serialises its own view types.

pub mod api_key;
pub mod chatbot;
pub mod membership;
pub mod setting;
pub mod team;
pub mod user;
