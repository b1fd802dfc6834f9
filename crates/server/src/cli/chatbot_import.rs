//! `chatbot import`: a pipeline exported from the original Open Chat Studio
//! becomes a chatbot here, or the import is refused with every part that
//! could not be mapped, by node.

use std::path::PathBuf;

use clap::Args;
use domain::chatbots;
use domain::pipeline::original::{ImportOptions, from_original};
use serde_json::{Value, json};

use super::Cli;
use crate::output;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(long)]
    pub team: String,
    /// The original's pipeline export (JSON: `nodes` and `edges`, or a record with them under `data`).
    #[arg(long)]
    pub file: PathBuf,
    /// The chatbot's name (default: the export's `name`, else the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// The team provider the LLM, router and extraction nodes use.
    #[arg(long)]
    pub provider: Option<String>,
    /// The model for nodes whose export names none (the original stores a model id).
    #[arg(long)]
    pub model: Option<String>,
    /// Leave out settings that have no counterpart yet (tools, …) instead of refusing.
    #[arg(long)]
    pub skip_unsupported: bool,
}

pub async fn run(cli: &Cli, db: &store::Db, a: &ImportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.file.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", a.file.display()))?;
    let options = ImportOptions {
        provider: a.provider.clone(),
        model: a.model.clone(),
        skip_unsupported: a.skip_unsupported,
    };
    let imported = from_original(&doc, &options).map_err(|problems| {
        anyhow::anyhow!(
            "cannot import {}:\n  {}",
            a.file.display(),
            problems.join("\n  ")
        )
    })?;
    let name = a
        .name
        .clone()
        .or_else(|| doc.get("name").and_then(Value::as_str).map(str::to_string))
        .or_else(|| a.file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "Imported".into());
    let t = domain::teams::by_slug(&db.read, &a.team).await?;
    let owner = domain::teams::owner_user_id(&db.read, t.id).await?;
    let config = json!({"pipeline": imported.pipeline});
    let bot = chatbots::create(&db.write, t.id, Some(owner), &name, None, Some(config)).await?;
    if cli.json {
        output::json(&json!({"chatbot": bot, "left_out": imported.left_out}));
    } else {
        for l in &imported.left_out {
            output::line(&format!("left out: {l}"));
        }
        output::line(&format!(
            "imported chatbot {} into team {}:",
            bot.name, t.slug
        ));
        output::line(&bot.id.to_string());
    }
    Ok(())
}
