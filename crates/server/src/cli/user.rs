//! `chatstudio user`: the people who sign in to the console, and their roles.
//! A password comes from an environment variable (`--password-env`, by
//! default `CHATSTUDIO_PASSWORD`), is generated and shown once
//! (`--generate-password`), or is asked for at a prompt; never from the
//! command line itself, where shell history would keep it.

use std::io::{BufRead, IsTerminal, Write};

use clap::{Args, Subcommand};
use domain::teams::Role;
use domain::users::Password;
use serde_json::json;

use super::Cli;
use crate::output;

#[derive(Debug, Args)]
pub struct PasswordSource {
    /// The environment variable holding the password.
    #[arg(long, default_value = "CHATSTUDIO_PASSWORD")]
    password_env: String,
    /// Generate a password and print it once.
    #[arg(long)]
    generate_password: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a person to a team (creating the user when the email is new).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        team: String,
        /// owner, team_admin (members, providers, keys), chatbot_admin
        /// (chatbots, versions, channels, events) or chat_viewer (reads sessions).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// A team's members and their roles.
    List {
        #[arg(long)]
        team: String,
    },
    /// Set a user's password (their open console sessions end).
    SetPassword {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Take a person out of a team (not the last owner).
    Remove {
        #[arg(long)]
        email: String,
        #[arg(long)]
        team: String,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::ASSIGNABLE
        .iter()
        .copied()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = Role::ASSIGNABLE.iter().map(|r| r.as_str()).collect();
            format!("unknown role {s:?} (one of: {})", names.join(", "))
        })
}

/// The password and whether it was generated (and must be shown).
fn password(src: &PasswordSource) -> anyhow::Result<(Password, bool)> {
    if src.generate_password {
        return Ok((Password::new(domain::keys::random_alnum(20)), true));
    }
    if let Ok(p) = std::env::var(&src.password_env) {
        return Ok((Password::new(p), false));
    }
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
        // Best effort: no echo where `stty` exists.
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if tty {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        anyhow::bail!(
            "no password: set {} or pass --generate-password",
            src.password_env
        );
    }
    Ok((Password::new(p), false))
}

pub async fn run(cli: &Cli, db: &store::Db, cmd: &UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Create {
            email,
            team,
            role,
            password: src,
        } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let (pw, generated) = password(src)?;
            let m = domain::users::add_to_team(&db.write, t.id, email, *role, Some(&pw)).await?;
            let shown = generated.then(|| domain::users::reveal(&pw));
            if cli.json {
                output::json(
                    &json!({"email": m.email, "team": t.slug, "role": m.role, "password": shown}),
                );
            } else {
                output::line(&format!(
                    "added {} to team {} as {}",
                    m.email, t.slug, m.role
                ));
                if let Some(p) = shown {
                    output::line("password (shown once):");
                    output::line(&p);
                }
            }
        }
        UserCmd::List { team } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            let members = domain::users::members(&db.read, t.id).await?;
            output::rows(cli.json, &members, |m| {
                let access = if m.can_sign_in {
                    "console"
                } else {
                    "keys only"
                };
                format!("{}\t{}\t{access}", m.email, m.role)
            });
        }
        UserCmd::SetPassword {
            email,
            password: src,
        } => {
            let (pw, generated) = password(src)?;
            domain::users::set_password(&db.write, email, &pw).await?;
            if cli.json {
                let shown = generated.then(|| domain::users::reveal(&pw));
                output::json(&json!({"email": email.trim(), "password": shown}));
            } else {
                output::line(&format!(
                    "password of {} set; their sign-ins ended",
                    email.trim()
                ));
                if generated {
                    output::line("password (shown once):");
                    output::line(&domain::users::reveal(&pw));
                }
            }
        }
        UserCmd::Remove { email, team } => {
            let t = domain::teams::by_slug(&db.read, team).await?;
            domain::users::remove_from_team(&db.write, t.id, email).await?;
            if cli.json {
                output::json(&json!({"email": email.trim(), "team": t.slug, "removed": true}));
            } else {
                output::line(&format!("removed {} from team {}", email.trim(), t.slug));
            }
        }
    }
    Ok(())
}
