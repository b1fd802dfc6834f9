use clap::Subcommand;
use serde_json::json;

use super::Cli;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Create an API key; the key is printed once, alone on the last line.
    Create {
        #[arg(long)]
        team: String,
        /// Allow writes (keys are read-only by default).
        #[arg(long)]
        read_write: bool,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List a team's keys (prefixes only; secrets are never stored).
    List {
        #[arg(long)]
        team: String,
    },
    /// Revoke a key by its prefix (one-way).
    Revoke { prefix: String },
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &KeyCmd) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::Create {
            team,
            read_write,
            name,
        } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let owner = domain::teams::owner_user_id(&db.read, t.id).await?;
            let (k, full) = domain::keys::create(&db.write, t.id, owner, name, !read_write).await?;
            if cli.json {
                output::json(
                    &json!({"prefix": k.prefix, "name": k.name, "read_only": k.read_only, "key": full}),
                );
            } else {
                output::line(&format!(
                    "created {} key {} for team {} (shown once):",
                    access(k.read_only),
                    k.prefix,
                    t.slug
                ));
                output::line(&full);
            }
        }
        KeyCmd::List { team } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let keys = domain::keys::list(&db.read, t.id).await?;
            output::rows(cli.json, &keys, |k| {
                let state = if k.revoked { "revoked" } else { "active" };
                format!("{}\t{}\t{state}\t{}", k.prefix, access(k.read_only), k.name)
            });
        }
        KeyCmd::Revoke { prefix } => {
            let k = domain::keys::revoke(&db.write, prefix).await?;
            if cli.json {
                output::json(&json!(k));
            } else {
                output::line(&format!("revoked key {}", k.prefix));
            }
        }
    }
    Ok(())
}

fn access(read_only: bool) -> &'static str {
    if read_only { "read-only" } else { "read-write" }
}
