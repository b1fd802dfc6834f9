use clap::Subcommand;
use domain::pricing::{self, ServiceKind};
use serde_json::json;

use super::Cli;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum PricingCmd {
    /// Set a team's own price for a model, overriding the shipped price table.
    Set {
        #[arg(long)]
        team: String,
        #[arg(long, value_parser = ["openai", "anthropic", "gemini", "builtin"])]
        provider_type: String,
        #[arg(long)]
        model: String,
        #[arg(long, value_parser = ["input", "output", "cached_input", "cache_write"])]
        kind: String,
        /// Price in USD per 1M tokens, e.g. 2.50.
        #[arg(long)]
        usd_per_1m: String,
    },
    /// Show the price in force for a model (team override, else the shipped table).
    Show {
        #[arg(long)]
        team: String,
        #[arg(long)]
        provider_type: String,
        #[arg(long)]
        model: String,
    },
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &PricingCmd) -> anyhow::Result<()> {
    match cmd {
        PricingCmd::Set {
            team,
            provider_type,
            model,
            kind,
            usd_per_1m,
        } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let k =
                ServiceKind::parse(kind).ok_or_else(|| anyhow::anyhow!("unknown kind {kind}"))?;
            let per_1k = pricing::set_override(
                &db.write,
                t.id,
                provider_type,
                model,
                k,
                usd_per_1m,
                store::now(),
            )
            .await?;
            if cli.json {
                output::json(&json!({"unit_price_per_1k": pricing::format_e8(per_1k)}));
            } else {
                output::line(&format!(
                    "{provider_type}/{model} {kind}: {} USD per 1K tokens for team {}",
                    pricing::format_e8(per_1k),
                    t.slug
                ));
            }
        }
        PricingCmd::Show {
            team,
            provider_type,
            model,
        } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let prices =
                pricing::prices(&db.read, t.id, provider_type, model, store::now()).await?;
            let mut rows = serde_json::Map::new();
            for k in [
                ServiceKind::Input,
                ServiceKind::Output,
                ServiceKind::CachedInput,
                ServiceKind::CacheWrite,
            ] {
                rows.insert(
                    k.as_str().into(),
                    prices
                        .get(k)
                        .map_or(serde_json::Value::Null, |v| json!(pricing::format_e8(v))),
                );
            }
            if cli.json {
                output::json(&json!(rows));
            } else {
                for (k, v) in rows {
                    output::line(&format!("{k}\t{}", v.as_str().unwrap_or("unpriced")));
                }
            }
        }
    }
    Ok(())
}
