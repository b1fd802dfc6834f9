use clap::Subcommand;
use serde_json::json;

use super::Cli;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum TeamCmd {
    /// Create a team (and its owner user).
    Create {
        /// Short unique name: letters, digits, '-' and '_'.
        slug: String,
        /// Display name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List teams.
    List,
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &TeamCmd) -> anyhow::Result<()> {
    match cmd {
        TeamCmd::Create { slug, name } => {
            let (t, _) = domain::teams::create(&db.write, slug, name.as_deref()).await?;
            if cli.json {
                output::json(&json!(t));
            } else {
                output::line(&format!("created team {} ({})", t.slug, t.name));
            }
        }
        TeamCmd::List => {
            let teams = domain::teams::list(&db.read).await?;
            if cli.json {
                output::json(&json!(teams));
            } else {
                for t in teams {
                    output::line(&format!("{}\t{}", t.slug, t.name));
                }
            }
        }
    }
    Ok(())
}
