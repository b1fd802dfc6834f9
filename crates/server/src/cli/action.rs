use std::path::{Path, PathBuf};

use clap::Subcommand;
use domain::actions::{Auth, AuthKind, Health, NewAction};
use serde_json::{Value, json};

use super::provider::read_key;
use super::{Cli, TeamArg, TeamItem};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum ActionCmd {
    /// Add a custom action: an HTTP API described by an OpenAPI 3 document
    /// whose operations LLM nodes may call (`custom_actions: [NAME:OPERATION_ID]`).
    /// The auth secret is read from an environment variable or a file and
    /// stored encrypted.
    Add(Box<AddArgs>),
    /// List a team's custom actions and their operations (secrets are never shown).
    List(TeamArg),
    /// Remove a custom action no working or published version uses.
    Remove(TeamItem),
    /// Call the action's health path and record whether it is up.
    Check(TeamItem),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[arg(long)]
    team: String,
    /// Letters, digits, '.', '_' or '-'; nodes name the action by it.
    #[arg(long)]
    name: String,
    /// The API's base URL; operation paths are appended to it.
    #[arg(long)]
    server_url: String,
    /// The OpenAPI 3 document (JSON or YAML).
    #[arg(long)]
    schema: PathBuf,
    #[arg(long, default_value = "")]
    description: String,
    /// Extra instructions the model gets with the action's tools.
    #[arg(long, default_value = "")]
    prompt: String,
    /// A path that answers GET with 2xx when the API is up (`action check`).
    #[arg(long)]
    health_path: Option<String>,
    #[arg(long, value_parser = ["none", "api_key", "bearer", "basic"], default_value = "none")]
    auth: String,
    /// The API key's header (api_key auth; default X-Api-Key).
    #[arg(long)]
    auth_header: Option<String>,
    /// The basic-auth username.
    #[arg(long)]
    username: Option<String>,
    /// Name of the environment variable holding the secret (key, token or password).
    #[arg(long, conflicts_with = "secret_file")]
    secret_env: Option<String>,
    /// File holding the secret.
    #[arg(long)]
    secret_file: Option<PathBuf>,
}

/// An OpenAPI document from a JSON or YAML file.
pub fn read_schema(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    domain::actions::parse_schema(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &ActionCmd) -> anyhow::Result<()> {
    match cmd {
        ActionCmd::Add(add) => {
            let AddArgs {
                team,
                name,
                server_url,
                schema,
                description,
                prompt,
                health_path,
                auth,
                auth_header,
                username,
                secret_env,
                secret_file,
            } = add.as_ref();
            let t = domain::teams::by_slug(&db.read, team).await?;
            let secrets = domain::secrets::SecretBox::load(&cli.storage.data_dir)?;
            let kind: AuthKind = auth.parse()?;
            let (a, skipped) = domain::actions::add(
                &db.write,
                &secrets,
                t.id,
                NewAction {
                    name: name.clone(),
                    description: description.clone(),
                    prompt: prompt.clone(),
                    server_url: server_url.clone(),
                    schema: read_schema(schema)?,
                    auth: Auth {
                        kind,
                        header: auth_header.clone(),
                        username: username.clone(),
                        secret: read_key(secret_env, secret_file)?,
                    },
                    health_path: health_path.clone(),
                },
            )
            .await?;
            if cli.json {
                output::json(&json!({"action": a, "skipped": skipped}));
            } else {
                for s in &skipped {
                    output::line(&format!("skipped {} {}: {}", s.method, s.path, s.reason));
                }
                output::line(&format!(
                    "added action {} to team {} with operations: {}",
                    a.name,
                    t.slug,
                    a.operations.join(", ")
                ));
            }
        }
        ActionCmd::List(TeamArg { team }) => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let list = domain::actions::list(&db.read, t.id).await?;
            output::rows(cli.json, &list, |a| {
                format!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.name,
                    a.server_url,
                    a.auth,
                    a.health_status,
                    a.operations.join(",")
                )
            });
        }
        ActionCmd::Remove(TeamItem { team, name }) => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            domain::actions::remove(&db.write, t.id, name).await?;
            if cli.json {
                output::json(&json!({"removed": name}));
            } else {
                output::line(&format!("removed action {name}"));
            }
        }
        ActionCmd::Check(TeamItem { team, name }) => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let secrets = domain::secrets::SecretBox::load(&cli.storage.data_dir)?;
            let outbound = engine::outbound::Outbound::new(cli.storage.outbound());
            let outcome =
                engine::tools::actions::check_one(&db.write, &secrets, &outbound, t.id, name)
                    .await?;
            match outcome {
                Ok(status) if cli.json => {
                    output::json(&json!({"health": Health::Up, "status": status}))
                }
                Ok(status) => output::line(&format!("{name} is up (HTTP {status})")),
                Err(why) => anyhow::bail!("{name} is down: {why}"),
            }
        }
    }
    Ok(())
}
