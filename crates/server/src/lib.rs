//! The `chatstudio` binary's library half: configuration, start-up and
//! shutdown of the server, and the admin CLI. Tests start the server through
//! [`serve::start`] exactly as `chatstudio serve` does.

pub mod cli;
pub mod config;
pub mod http;
pub mod output;
pub mod serve;
