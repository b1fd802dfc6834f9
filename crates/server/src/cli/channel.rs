use clap::Subcommand;
use domain::widget::{self, AuthLevel};
use serde_json::json;
use uuid::Uuid;

use super::{Cli, domain_err};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum ChannelCmd {
    /// Add a chat widget channel; prints the embed key alone on the last line.
    AddWidget {
        #[arg(long)]
        chatbot: Uuid,
        /// Allowed page host: `example.com`, `*.example.com` or `*` (repeatable).
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
        /// `session-token` (default: embed key to start, then a session token)
        /// or `embed-key` (embed key only; what the published widget 0.6 sends).
        #[arg(long, default_value = "session-token", value_parser = ["embed-key", "session-token"])]
        auth_level: String,
        /// Session token lifetime in seconds (default 7 days).
        #[arg(long)]
        token_lifetime: Option<i64>,
    },
    /// List a chatbot's widget channels (embed keys are never shown again).
    List {
        #[arg(long)]
        chatbot: Uuid,
    },
    /// Replace a channel's embed key; prints the new key alone on the last line.
    RotateKey {
        id: Uuid,
    },
    /// Stop a channel from starting or continuing chats.
    Disable {
        id: Uuid,
        /// What the widget shows instead.
        #[arg(long)]
        message: Option<String>,
    },
    Enable {
        id: Uuid,
    },
    /// Remove a channel; its key stops working everywhere.
    Remove {
        id: Uuid,
    },
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &ChannelCmd) -> anyhow::Result<()> {
    match cmd {
        ChannelCmd::AddWidget {
            chatbot,
            domains,
            auth_level,
            token_lifetime,
        } => {
            let level = AuthLevel::parse(auth_level)
                .ok_or_else(|| anyhow::anyhow!("unknown auth level {auth_level}"))?;
            let (ch, key) = widget::add(&db.write, *chatbot, domains, level, *token_lifetime)
                .await
                .map_err(domain_err)?;
            if cli.json {
                output::json(&json!({"channel": ch, "embed_key": key}));
            } else {
                output::line(&format!(
                    "added widget channel {} ({}) — embed key (shown once):",
                    ch.id,
                    ch.auth_level.as_str()
                ));
                output::line(&key);
            }
        }
        ChannelCmd::List { chatbot } => {
            let list = widget::list(&db.read, *chatbot).await.map_err(domain_err)?;
            if cli.json {
                output::json(&json!(list));
            } else {
                for c in list {
                    output::line(&format!(
                        "{}\t{}\t{}\t{}",
                        c.id,
                        c.auth_level.as_str(),
                        if c.enabled { "enabled" } else { "disabled" },
                        c.allowed_domains.join(",")
                    ));
                }
            }
        }
        ChannelCmd::RotateKey { id } => {
            let key = widget::rotate_key(&db.write, *id)
                .await
                .map_err(domain_err)?;
            if cli.json {
                output::json(&json!({"embed_key": key}));
            } else {
                output::line("new embed key (shown once):");
                output::line(&key);
            }
        }
        ChannelCmd::Disable { id, message } => {
            widget::set_enabled(&db.write, *id, false, message.clone())
                .await
                .map_err(domain_err)?;
            output::line(&format!("disabled channel {id}"));
        }
        ChannelCmd::Enable { id } => {
            widget::set_enabled(&db.write, *id, true, None)
                .await
                .map_err(domain_err)?;
            output::line(&format!("enabled channel {id}"));
        }
        ChannelCmd::Remove { id } => {
            widget::remove(&db.write, *id).await.map_err(domain_err)?;
            output::line(&format!("removed channel {id}"));
        }
    }
    Ok(())
}
