use clap::Subcommand;
use domain::channels::widget::{self, AuthLevel, CredentialMode};
use serde_json::json;
use uuid::Uuid;

use super::Cli;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum ChannelCmd {
    /// Add a chat widget channel; prints the embed key alone on the last
    /// line (in `oauth` mode, which takes no embed key, the channel id).
    AddWidget {
        #[arg(long)]
        chatbot: Uuid,
        /// Allowed page host: `example.com`, `*.example.com` or `*`
        /// (repeatable; at least one, except in `oauth` mode, where none
        /// means only servers, never browsers, may start chats).
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// `session-token` (default: embed key to start, then a session token)
        /// or `embed-key` (embed key only; what the published widget 0.6 sends).
        #[arg(long, default_value = "session-token", value_parser = ["embed-key", "session-token"])]
        auth_level: String,
        /// Session token lifetime in seconds (default 7 days).
        #[arg(long)]
        token_lifetime: Option<i64>,
        /// What admits a chat: `embed_key` (the page's embed key) or `oauth`
        /// (a machine OAuth application's `chat:start` token, sent by the
        /// page's server; its sessions always need their session token).
        #[arg(long, default_value = "embed_key", value_parser = ["embed_key", "oauth"])]
        credential_mode: String,
    },
    /// Connect a Telegram bot: checks the token (getMe) and, with a public URL,
    /// registers the webhook. Prints the channel id alone on the last line.
    AddTelegram {
        #[arg(long)]
        chatbot: Uuid,
        /// Environment variable holding the bot token (never on the command line).
        #[arg(long)]
        bot_token_env: String,
        /// The server's public base URL, for the webhook.
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Connect a WhatsApp number through one of the team's messaging
    /// providers (Meta: the number is looked up among the business
    /// account's to find its phone_number_id). Prints the webhook URL to
    /// configure, and the channel id alone on the last line.
    AddWhatsapp {
        #[arg(long)]
        chatbot: Uuid,
        /// The messaging provider's name (`chatstudio messaging add`).
        #[arg(long)]
        provider: String,
        /// The number, in international format (`+27821234567`).
        #[arg(long)]
        number: String,
        /// The server's public base URL, for the webhook address printed.
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Take text messages (SMS) on a Twilio number. Prints the channel id
    /// alone on the last line.
    AddSms {
        #[arg(long)]
        chatbot: Uuid,
        /// The Twilio messaging provider's name.
        #[arg(long)]
        provider: String,
        #[arg(long)]
        number: String,
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
        /// What participants are told instead (the widget shows it; Telegram and WhatsApp send it).
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
            credential_mode,
        } => {
            let level = AuthLevel::parse(auth_level)
                .ok_or_else(|| anyhow::anyhow!("unknown auth level {auth_level}"))?;
            let mode = CredentialMode::parse(credential_mode)
                .ok_or_else(|| anyhow::anyhow!("unknown credential mode {credential_mode}"))?;
            // The domain quietly gives an oauth channel session tokens; an
            // explicit request for less is refused rather than ignored.
            if mode == CredentialMode::OAuth && level == AuthLevel::EmbedKey {
                anyhow::bail!(
                    "an oauth channel's sessions always need their session token: drop --auth-level embed-key"
                );
            }
            let (ch, key) =
                widget::add_with_mode(&db.write, *chatbot, domains, level, *token_lifetime, mode)
                    .await?;
            match (mode, cli.json) {
                (CredentialMode::EmbedKey, true) => {
                    output::json(&json!({"channel": ch, "embed_key": key}));
                }
                (CredentialMode::EmbedKey, false) => {
                    output::line(&format!(
                        "added widget channel {} ({}) — embed key (shown once):",
                        ch.id,
                        ch.auth_level.as_str()
                    ));
                    output::line(&key);
                }
                // An embed key never admits to an oauth channel, so none is
                // shown: it would only invite pasting a useless secret.
                (CredentialMode::OAuth, true) => output::json(&json!({"channel": ch})),
                (CredentialMode::OAuth, false) => {
                    let reach = if ch.allowed_domains.is_empty() {
                        "servers only (no browser origin)".to_string()
                    } else {
                        ch.allowed_domains.join(", ")
                    };
                    output::line(&format!(
                        "added widget channel in oauth mode ({reach}): a machine application's chat:start token starts its chats; channel id:"
                    ));
                    output::line(&ch.id.to_string());
                }
            }
        }
        ChannelCmd::AddTelegram {
            chatbot,
            bot_token_env,
            public_url,
        } => {
            let token = std::env::var(bot_token_env)
                .map_err(|_| anyhow::anyhow!("environment variable {bot_token_env} is not set"))?;
            let bot = channels::telegram::Telegram::new(
                &cli.storage.telegram_api_url,
                token.trim(),
                llm::http::client(),
            );
            let me = bot
                .get_me()
                .await
                .map_err(|e| anyhow::anyhow!("Telegram did not accept the bot token: {e}"))?;
            let secret = channels::telegram::new_secret_token();
            let secrets = domain::secrets::SecretBox::load(&cli.storage.data_dir)?;
            let ch = domain::channels::telegram::add(
                &db.write,
                &secrets,
                *chatbot,
                token.trim(),
                &secret,
                json!({"id": me.id, "username": me.username, "first_name": me.first_name}),
            )
            .await?;
            if let Some(base) = public_url {
                let url = format!("{}/channels/telegram/{}", base.trim_end_matches('/'), ch.id);
                bot.set_webhook(&url, &secret)
                    .await
                    .map_err(|e| anyhow::anyhow!("registering the webhook failed: {e}"))?;
                if !cli.json {
                    output::line(&format!("webhook registered at {url}"));
                }
            }
            if cli.json {
                output::json(&json!({"channel_id": ch.id}));
            } else {
                output::line(&format!("connected Telegram bot {:?}:", me.username));
                output::line(&ch.id.to_string());
            }
        }
        ChannelCmd::AddWhatsapp {
            chatbot,
            provider,
            number,
            public_url,
        } => add_whatsapp(cli, db, *chatbot, provider, number, public_url.as_deref()).await?,
        ChannelCmd::AddSms {
            chatbot,
            provider,
            number,
        } => {
            let (team, _) = domain::chatbots::find_any_team(&db.read, *chatbot).await?;
            let secrets = domain::secrets::SecretBox::load(&cli.storage.data_dir)?;
            let access = domain::messaging::by_name(&db.read, &secrets, team, provider).await?;
            let number = domain::channels::whatsapp::e164(number)?;
            let ch =
                domain::channels::whatsapp::add_sms(&db.write, *chatbot, &access, &number).await?;
            if cli.json {
                output::json(&json!({"channel_id": ch.id}));
            } else {
                output::line(&format!(
                    "SMS to {number} now reach the chatbot; point the number's messaging webhook at /channels/twilio/incoming_message"
                ));
                output::line(&ch.id.to_string());
            }
        }
        ChannelCmd::List { chatbot } => {
            let list = widget::list(&db.read, *chatbot).await?;
            output::rows(cli.json, &list, |c| {
                let state = if c.enabled { "enabled" } else { "disabled" };
                let domains = c.allowed_domains.join(",");
                format!(
                    "{}\t{}\t{}\t{state}\t{domains}",
                    c.id,
                    c.credential_mode,
                    c.auth_level.as_str()
                )
            });
        }
        ChannelCmd::RotateKey { id } => {
            let key = widget::rotate_key(&db.write, *id).await?;
            if cli.json {
                output::json(&json!({"embed_key": key}));
            } else {
                output::line("new embed key (shown once):");
                output::line(&key);
            }
        }
        ChannelCmd::Disable { id, message } => {
            widget::set_enabled(&db.write, *id, false, message.clone()).await?;
            output::line(&format!("disabled channel {id}"));
        }
        ChannelCmd::Enable { id } => {
            widget::set_enabled(&db.write, *id, true, None).await?;
            output::line(&format!("enabled channel {id}"));
        }
        ChannelCmd::Remove { id } => {
            widget::remove(&db.write, *id).await?;
            output::line(&format!("removed channel {id}"));
        }
    }
    Ok(())
}

async fn add_whatsapp(
    cli: &Cli,
    db: &store::Db,
    chatbot: Uuid,
    provider: &str,
    number: &str,
    public_url: Option<&str>,
) -> anyhow::Result<()> {
    let (team, _) = domain::chatbots::find_any_team(&db.read, chatbot).await?;
    let secrets = domain::secrets::SecretBox::load(&cli.storage.data_dir)?;
    let meta = engine::connect::MetaApi {
        base_url: &cli.storage.meta_api_url,
        http: llm::http::client(),
    };
    let c =
        engine::connect::whatsapp(db, &secrets, meta, team, chatbot, (provider, number)).await?;
    let base = public_url
        .unwrap_or("https://<your server>")
        .trim_end_matches('/');
    let webhook = format!("{base}{}", c.webhook_path);
    if cli.json {
        output::json(&json!({"channel_id": c.channel_id, "webhook": webhook}));
    } else {
        output::line(&format!(
            "connected WhatsApp {}; point the provider's webhook at {webhook}",
            c.number
        ));
        output::line(&c.channel_id.to_string());
    }
    Ok(())
}
