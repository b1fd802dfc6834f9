//! `chatstudio messaging`: a team's messaging providers (WhatsApp through
//! Meta's Cloud API, Twilio or Turn.io). Secrets come from environment
//! variables or files, never the command line, and are stored encrypted.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use domain::messaging::{self, Credentials, MessagingKind};
use serde_json::json;

use super::provider::read_key;
use super::{Cli, TeamArg, TeamItem};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum MessagingCmd {
    /// Add a messaging provider to a team.
    Add(Box<AddArgs>),
    /// List a team's messaging providers (secrets are never shown).
    List(TeamArg),
    /// Remove a messaging provider no channel uses.
    Remove(TeamItem),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[arg(long)]
    team: String,
    #[arg(long)]
    name: String,
    /// `meta` (`meta_cloud_api`), `twilio` or `turn` (`turnio`).
    #[arg(long = "type", value_parser = ["meta", "meta_cloud_api", "twilio", "turn", "turnio"])]
    kind: String,
    /// Meta: the WhatsApp Business Account id.
    #[arg(long)]
    business_id: Option<String>,
    /// Meta: the language code of the `new_bot_message` template (default `en`).
    #[arg(long)]
    template_language: Option<String>,
    /// Twilio: the account SID (`AC…`).
    #[arg(long)]
    account_sid: Option<String>,
    /// Twilio: the approved Content template (`HX…`, one variable) that
    /// carries messages outside WhatsApp's 24-hour window.
    #[arg(long)]
    template_content_sid: Option<String>,
    /// Meta: the system user's access token.
    #[arg(long, conflicts_with = "access_token_file")]
    access_token_env: Option<String>,
    #[arg(long)]
    access_token_file: Option<PathBuf>,
    /// Meta: the app secret webhook calls are signed with.
    #[arg(long, conflicts_with = "app_secret_file")]
    app_secret_env: Option<String>,
    #[arg(long)]
    app_secret_file: Option<PathBuf>,
    /// Meta: the token the webhook's verification handshake presents.
    #[arg(long, conflicts_with = "verify_token_file")]
    verify_token_env: Option<String>,
    #[arg(long)]
    verify_token_file: Option<PathBuf>,
    /// Twilio and Turn: the auth token.
    #[arg(long, conflicts_with = "auth_token_file")]
    auth_token_env: Option<String>,
    #[arg(long)]
    auth_token_file: Option<PathBuf>,
    /// Turn: the webhook HMAC secret (unsigned calls are refused once set).
    #[arg(long, conflicts_with = "hmac_secret_file")]
    hmac_secret_env: Option<String>,
    #[arg(long)]
    hmac_secret_file: Option<PathBuf>,
}

fn required(value: anyhow::Result<Option<String>>, flag: &str) -> anyhow::Result<String> {
    value?.ok_or_else(|| anyhow::anyhow!("give --{flag}-env or --{flag}-file"))
}

fn credentials(a: &AddArgs) -> anyhow::Result<Credentials> {
    let AddArgs {
        kind,
        business_id,
        template_language,
        account_sid,
        template_content_sid,
        access_token_env,
        access_token_file,
        app_secret_env,
        app_secret_file,
        verify_token_env,
        verify_token_file,
        auth_token_env,
        auth_token_file,
        hmac_secret_env,
        hmac_secret_file,
        ..
    } = a;
    let kind = MessagingKind::from_cli(kind)
        .ok_or_else(|| anyhow::anyhow!("unknown messaging provider type {kind}"))?;
    Ok(match kind {
        MessagingKind::MetaCloudApi => Credentials::MetaCloudApi {
            business_id: business_id
                .clone()
                .ok_or_else(|| anyhow::anyhow!("a Meta provider needs --business-id"))?,
            access_token: required(
                read_key(access_token_env, access_token_file),
                "access-token",
            )?,
            app_secret: required(read_key(app_secret_env, app_secret_file), "app-secret")?,
            verify_token: required(
                read_key(verify_token_env, verify_token_file),
                "verify-token",
            )?,
            template_language_code: template_language.clone().unwrap_or_default(),
        },
        MessagingKind::Twilio => Credentials::Twilio {
            account_sid: account_sid
                .clone()
                .ok_or_else(|| anyhow::anyhow!("a Twilio provider needs --account-sid"))?,
            auth_token: required(read_key(auth_token_env, auth_token_file), "auth-token")?,
            template_content_sid: template_content_sid.clone(),
        },
        MessagingKind::Turnio => Credentials::Turnio {
            auth_token: required(read_key(auth_token_env, auth_token_file), "auth-token")?,
            hmac_secret: read_key(hmac_secret_env, hmac_secret_file)?,
        },
    })
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &MessagingCmd) -> anyhow::Result<()> {
    match cmd {
        MessagingCmd::Add(a) => {
            let (team, name) = (&a.team, &a.name);
            let creds = credentials(a)?;
            let t = domain::teams::by_slug(&db.read, team).await?;
            let secrets = domain::secrets::SecretBox::load(&cli.storage.data_dir)?;
            let p = messaging::add(&db.write, &secrets, t.id, name, creds).await?;
            if cli.json {
                output::json(&json!(p));
            } else {
                output::line(&format!(
                    "added messaging provider {:?} ({})",
                    p.name,
                    p.kind.as_str()
                ));
            }
        }
        MessagingCmd::List(TeamArg { team }) => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let list = messaging::list(&db.read, t.id).await?;
            output::rows(cli.json, &list, |p| {
                format!("{}\t{}\t{}", p.name, p.kind.as_str(), p.settings)
            });
        }
        MessagingCmd::Remove(TeamItem { team, name }) => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            messaging::remove(&db.write, t.id, name).await?;
            output::line(&format!("removed messaging provider {name:?}"));
        }
    }
    Ok(())
}
