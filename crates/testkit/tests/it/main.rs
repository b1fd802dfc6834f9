//! Black-box tests: the real server over HTTP, on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their harness fail loudly"
)]

mod actions;
mod auth;
mod browser;
mod chat;
mod console;
mod console_oauth_apps;
mod console_usage;
mod contract;
mod conversations;
mod ending;
mod experiments;
mod files;
mod fuzz;
mod hardening;
mod jobs;
mod oauth;
mod oauth_client;
mod onboarding;
mod openai;
mod openai_sdk;
mod participants;
mod pipelines;
mod proactive;
mod reliability;
mod routing;
mod session_counts;
mod sessions;
mod telegram;
mod tools;
mod usage_rollups;
mod voice;
mod whatsapp;
mod whatsapp_providers;
