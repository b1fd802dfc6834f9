//! Settings shared by every command: where the data lives and which database to use.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Directory for the embedded SQLite database and local files.
    #[arg(
        long,
        env = "CHATSTUDIO_DATA_DIR",
        default_value = "./chatstudio-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://…` for PostgreSQL, `sqlite://…` for another
    /// SQLite file. Default: the SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where file bytes go: `s3://bucket/prefix` (credentials from the usual
    /// `AWS_*` variables) or `file:///dir`. Default: `files/` in the data dir.
    #[arg(long, env = "CHATSTUDIO_FILES_URL", global = true)]
    pub files_url: Option<String>,

    /// Telegram Bot API base URL (tests point it at a local fake).
    #[arg(
        long,
        env = "CHATSTUDIO_TELEGRAM_API_URL",
        default_value = "https://api.telegram.org",
        global = true
    )]
    pub telegram_api_url: String,

    /// SMTP server for pipeline emails: `smtp://user:pass@host:port`
    /// (`smtps://` for TLS, `?tls=required` for STARTTLS).
    #[arg(
        long,
        env = "CHATSTUDIO_SMTP_URL",
        global = true,
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,

    /// The sender of pipeline emails.
    #[arg(
        long,
        env = "CHATSTUDIO_SMTP_FROM",
        default_value = "chatstudio <chatstudio@localhost>",
        global = true
    )]
    pub smtp_from: String,

    /// Maximum database connections (readers on SQLite, the pool on PostgreSQL).
    #[arg(
        long,
        env = "CHATSTUDIO_DB_CONNECTIONS",
        default_value_t = 8,
        global = true
    )]
    pub db_connections: u32,
}

impl StorageArgs {
    pub fn smtp(&self) -> Option<engine::SmtpSettings> {
        self.smtp_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .map(|url| engine::SmtpSettings {
                url,
                from: self.smtp_from.clone(),
            })
    }

    pub fn db_config(&self) -> store::DbConfig {
        store::DbConfig {
            url: self.database_url.clone().filter(|u| !u.trim().is_empty()),
            data_dir: self.data_dir.clone(),
            max_connections: self.db_connections,
        }
    }
}
