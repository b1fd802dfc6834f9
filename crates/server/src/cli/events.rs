use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;

use super::Cli;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// The newest firings of a chatbot's event triggers: when, which
    /// trigger and action, its status and attempts, what it did or its error.
    Log {
        /// The chatbot (any of its versions' ids).
        #[arg(long)]
        chatbot: Uuid,
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &EventsCmd) -> anyhow::Result<()> {
    match cmd {
        EventsCmd::Log { chatbot, limit } => {
            let (team, _) = domain::chatbots::find_any_team(&db.read, *chatbot).await?;
            let firings = domain::event_triggers::log(&db.read, team, *chatbot, *limit).await?;
            if cli.json {
                output::json(&json!({ "results": firings }));
                return Ok(());
            }
            if firings.is_empty() {
                output::line("no trigger has fired");
            }
            for f in firings {
                let outcome = f
                    .done
                    .clone()
                    .or_else(|| f.last_error.clone())
                    .unwrap_or_default();
                output::line(&format!(
                    "{}  {:<22} {:<24} {:<9} attempts {}  session {}  {}",
                    f.created_at.format("%Y-%m-%d %H:%M:%S"),
                    f.on,
                    f.action,
                    f.status,
                    f.attempts,
                    f.session,
                    outcome
                ));
            }
            Ok(())
        }
    }
}
