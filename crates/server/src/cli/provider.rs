use std::path::PathBuf;

use clap::Subcommand;
use domain::providers::NewProvider;
use serde_json::json;

use super::{Cli, TeamArg, TeamItem};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum ProviderCmd {
    /// Add an LLM provider to a team. The API key is read from an environment
    /// variable or a file (never from the command line) and stored encrypted.
    Add {
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: String,
        #[arg(long = "type", value_parser = ["openai", "anthropic", "gemini", "builtin"])]
        kind: String,
        /// Endpoint override (Azure OpenAI, Groq, OpenRouter, Ollama, vLLM…).
        #[arg(long)]
        base_url: Option<String>,
        /// Name of the environment variable holding the API key.
        #[arg(long, conflicts_with = "api_key_file")]
        api_key_env: Option<String>,
        /// File holding the API key.
        #[arg(long)]
        api_key_file: Option<PathBuf>,
        /// Extra header sent on every call, `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Timeout of one call, in seconds.
        #[arg(long)]
        timeout: Option<i32>,
    },
    /// List a team's providers (credentials are never shown).
    List(TeamArg),
    /// Remove a provider.
    Remove(TeamItem),
}

pub(super) fn read_key(
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> anyhow::Result<Option<String>> {
    if let Some(var) = env {
        let v = std::env::var(var)
            .map_err(|_| anyhow::anyhow!("environment variable {var} is not set"))?;
        return Ok(Some(v.trim().to_string()));
    }
    if let Some(path) = file {
        let v = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        return Ok(Some(v.trim().to_string()));
    }
    Ok(None)
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &ProviderCmd) -> anyhow::Result<()> {
    match cmd {
        ProviderCmd::Add {
            team,
            name,
            kind,
            base_url,
            api_key_env,
            api_key_file,
            headers,
            timeout,
        } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let secrets = domain::secrets::SecretBox::load(&cli.storage.data_dir)?;
            let mut parsed = Vec::new();
            for h in headers {
                let (k, v) = h
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("header {h:?} must look like 'Name: value'"))?;
                parsed.push((k.trim().to_string(), v.trim().to_string()));
            }
            let p = domain::providers::add(
                &db.write,
                &secrets,
                t.id,
                NewProvider {
                    name: name.clone(),
                    kind: kind.clone(),
                    base_url: base_url.clone(),
                    api_key: read_key(api_key_env, api_key_file)?,
                    headers: parsed,
                    timeout_secs: *timeout,
                },
            )
            .await?;
            if cli.json {
                output::json(&json!(p));
            } else {
                output::line(&format!(
                    "added {} provider {} to team {}",
                    p.kind, p.name, t.slug
                ));
            }
        }
        ProviderCmd::List(TeamArg { team }) => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let list = domain::providers::list(&db.read, t.id).await?;
            output::rows(cli.json, &list, |p| {
                let url = p.base_url.as_deref().unwrap_or("-");
                let key = if p.has_api_key { "key set" } else { "no key" };
                format!("{}\t{}\t{url}\t{key}", p.name, p.kind)
            });
        }
        ProviderCmd::Remove(TeamItem { team, name }) => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            domain::providers::remove(&db.write, t.id, name).await?;
            if cli.json {
                output::json(&json!({"removed": name}));
            } else {
                output::line(&format!("removed provider {name}"));
            }
        }
    }
    Ok(())
}
