use std::path::{Path, PathBuf};

use domain::actions::NewAction;

use clap::Subcommand;
use domain::chatbots::{self, BotFile, Chatbot};
use serde_json::json;
use uuid::Uuid;

use super::Cli;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum ChatbotCmd {
    /// Create a chatbot (prints its public id on the last line).
    Create {
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// A chatbot file (YAML) whose `config` becomes the configuration.
        #[arg(long, conflicts_with_all = ["provider", "model", "prompt"])]
        file: Option<PathBuf>,
        /// One-node pipeline: the team provider to use.
        #[arg(long, requires = "model")]
        provider: Option<String>,
        /// One-node pipeline: the model.
        #[arg(long, requires = "provider")]
        model: Option<String>,
        /// One-node pipeline: the system prompt (may use {participant_data} etc.).
        #[arg(long, requires = "provider")]
        prompt: Option<String>,
    },
    /// List a team's chatbots.
    List {
        #[arg(long)]
        team: String,
    },
    /// Show a chatbot with its versions.
    Show { id: Uuid },
    /// Create or update a chatbot's working version from a YAML file.
    Apply {
        #[arg(long)]
        team: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Snapshot the working version as a new version (published unless --no-publish).
    Publish {
        id: Uuid,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        no_publish: bool,
    },
    /// Archive a chatbot and all its versions.
    Archive { id: Uuid },
    /// Import a pipeline exported from the original Open Chat Studio (JSON).
    Import(super::chatbot_import::ImportArgs),
    /// Run one turn without saving it: the path, every node's output, the reply.
    Test(super::chatbot_test::TestArgs),
}

fn read_file(path: &PathBuf) -> anyhow::Result<BotFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(BotFile::parse_yaml(&text)?)
}

/// The custom actions a chatbot file declares, with their schemas read
/// (inline, or from a file beside the chatbot file) and their secrets taken
/// from the environment.
fn declared_actions(path: &Path, file: &mut BotFile) -> anyhow::Result<Vec<NewAction>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for a in std::mem::take(&mut file.actions) {
        let schema = match (&a.schema, &a.schema_file) {
            (Some(s), None) => s.clone(),
            (None, Some(f)) => super::action::read_schema(&dir.join(f))?,
            _ => anyhow::bail!(
                "action {:?}: give its OpenAPI document as schema or schema_file (one of them)",
                a.name
            ),
        };
        let secret = match a.auth.as_ref().and_then(|x| x.secret_env.as_deref()) {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!("action {:?}: environment variable {var} is not set", a.name)
            })?),
            None => None,
        };
        out.push(a.into_new(schema, secret.map(|s| s.trim().to_string())));
    }
    Ok(out)
}

fn print_bot(cli: &Cli, bot: &Chatbot) {
    if cli.json {
        output::json(&json!(bot));
        return;
    }
    output::line(&format!("{}  {}", bot.id, bot.name));
    if !bot.description.is_empty() {
        output::line(&format!("  {}", bot.description));
    }
    output::line(&format!("  next version number: {}", bot.version_number));
    for v in &bot.versions {
        output::line(&format!(
            "  v{}{}  {}  {}",
            v.version_number,
            published(v.is_default_version),
            v.name,
            v.version_description
        ));
    }
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &ChatbotCmd) -> anyhow::Result<()> {
    match cmd {
        ChatbotCmd::Create {
            team,
            name,
            description,
            file,
            provider,
            model,
            prompt,
        } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let owner = domain::teams::owner_user_id(&db.read, t.id).await?;
            let config = match (file, provider, model) {
                (Some(f), _, _) => read_file(f)?.config,
                (None, Some(p), Some(m)) => {
                    let pipeline = domain::pipeline::Pipeline::single_llm(
                        p,
                        m,
                        prompt.as_deref().unwrap_or(""),
                    );
                    Some(json!({ "pipeline": pipeline }))
                }
                _ => None,
            };
            let bot = chatbots::create(
                &db.write,
                t.id,
                Some(owner),
                name,
                description.as_deref(),
                config,
            )
            .await?;
            if cli.json {
                output::json(&json!(bot));
            } else {
                output::line(&format!("created chatbot {} in team {}:", bot.name, t.slug));
                output::line(&bot.id.to_string());
            }
        }
        ChatbotCmd::List { team } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let bots = chatbots::list_all(&db.read, t.id).await?;
            output::rows(cli.json, &bots, |b| {
                let published = b
                    .versions
                    .iter()
                    .find(|v| v.is_default_version)
                    .map(|v| format!("v{}", v.version_number))
                    .unwrap_or_else(|| "unpublished".into());
                format!("{}\t{}\t{}", b.id, published, b.name)
            });
        }
        ChatbotCmd::Show { id } => {
            let (_, bot) = chatbots::find_any_team(&db.read, *id).await?;
            print_bot(cli, &bot);
        }
        ChatbotCmd::Apply { team, file } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let owner = domain::teams::owner_user_id(&db.read, t.id).await?;
            let mut bot_file = read_file(file)?;
            let declared = declared_actions(file, &mut bot_file)?;
            let secrets = domain::secrets::SecretBox::load(&cli.storage.data_dir)?;
            let (bot, created) =
                chatbots::apply(&db.write, &secrets, t.id, Some(owner), bot_file, declared).await?;
            if cli.json {
                output::json(&json!({"created": created, "chatbot": bot}));
            } else {
                output::line(&format!(
                    "{} chatbot {}:",
                    if created { "created" } else { "updated" },
                    bot.name
                ));
                output::line(&bot.id.to_string());
            }
        }
        ChatbotCmd::Publish {
            id,
            description,
            no_publish,
        } => {
            let (team, _) = chatbots::find_any_team(&db.read, *id).await?;
            let v =
                chatbots::create_version(&db.write, team, *id, description, !no_publish).await?;
            if cli.json {
                output::json(&json!(v));
            } else {
                output::line(&format!(
                    "created version {}{}",
                    v.version_number,
                    published(v.is_default_version)
                ));
            }
        }
        ChatbotCmd::Archive { id } => {
            let (team, _) = chatbots::find_any_team(&db.read, *id).await?;
            chatbots::archive(&db.write, team, *id).await?;
            if cli.json {
                output::json(&json!({"archived": id}));
            } else {
                output::line(&format!("archived chatbot {id}"));
            }
        }
        ChatbotCmd::Import(a) => super::chatbot_import::run(cli, db, a).await?,
        ChatbotCmd::Test(a) => super::chatbot_test::run(cli, a).await?,
    }
    Ok(())
}

fn published(is_default: bool) -> &'static str {
    if is_default { " (published)" } else { "" }
}
