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

    /// Meta's Graph API base URL, for WhatsApp (tests point it at a local fake).
    #[arg(
        long,
        env = "CHATSTUDIO_META_API_URL",
        default_value = "https://graph.facebook.com",
        global = true
    )]
    pub meta_api_url: String,

    /// Twilio's REST API base URL (tests point it at a local fake).
    #[arg(
        long,
        env = "CHATSTUDIO_TWILIO_API_URL",
        default_value = "https://api.twilio.com",
        global = true
    )]
    pub twilio_api_url: String,

    /// Turn.io's API base URL (tests point it at a local fake).
    #[arg(
        long,
        env = "CHATSTUDIO_TURN_API_URL",
        default_value = "https://whatsapp.turn.io",
        global = true
    )]
    pub turn_api_url: String,

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

    /// Non-public networks custom actions may call, comma-separated
    /// addresses or CIDRs (`10.0.0.0/8,127.0.0.1`). Everything private,
    /// loopback or link-local is refused otherwise.
    #[arg(
        long,
        env = "CHATSTUDIO_OUTBOUND_ALLOW",
        value_delimiter = ',',
        global = true
    )]
    pub outbound_allow: Vec<engine::outbound::Network>,

    /// Seconds a custom action call may take, its answer included.
    #[arg(
        long,
        env = "CHATSTUDIO_OUTBOUND_TIMEOUT",
        default_value_t = 10,
        global = true
    )]
    pub outbound_timeout: u64,

    /// The largest answer a custom action may give, in bytes.
    #[arg(
        long,
        env = "CHATSTUDIO_OUTBOUND_MAX_BYTES",
        default_value_t = 1024 * 1024,
        global = true
    )]
    pub outbound_max_bytes: usize,

    /// Seconds between scans for due timeout triggers.
    #[arg(
        long,
        env = "CHATSTUDIO_TIMEOUT_SCAN_INTERVAL",
        default_value_t = 5,
        global = true
    )]
    pub timeout_scan_interval: u64,

    /// Python node workers running at once (each a process of this binary).
    #[arg(
        long,
        env = "CHATSTUDIO_CODE_WORKERS",
        default_value_t = 2,
        global = true
    )]
    pub code_workers: usize,

    /// The most interpreter time a Python node may ask for, in seconds.
    #[arg(
        long,
        env = "CHATSTUDIO_CODE_MAX_CPU_SECONDS",
        default_value_t = 10.0,
        global = true
    )]
    pub code_max_cpu_seconds: f64,

    /// The most heap a Python node may ask for, in MiB.
    #[arg(
        long,
        env = "CHATSTUDIO_CODE_MAX_MEMORY_MB",
        default_value_t = 256,
        global = true
    )]
    pub code_max_memory_mb: usize,

    /// The longest a Python node may run, helper calls included, in seconds.
    #[arg(
        long,
        env = "CHATSTUDIO_CODE_MAX_WALL_SECONDS",
        default_value_t = 120.0,
        global = true
    )]
    pub code_max_wall_seconds: f64,

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

    pub fn outbound(&self) -> engine::outbound::OutboundSettings {
        engine::outbound::OutboundSettings {
            allow: self.outbound_allow.clone(),
            timeout: std::time::Duration::from_secs(self.outbound_timeout.max(1)),
            max_response_bytes: self.outbound_max_bytes,
        }
    }

    /// Code nodes run in workers of this very binary.
    pub fn code(&self) -> engine::CodeSettings {
        let seconds = |s: f64| std::time::Duration::from_secs_f64(s.clamp(0.01, 3600.0));
        engine::CodeSettings {
            worker: sandbox::WorkerCommand::current_exe().ok(),
            workers: self.code_workers.max(1),
            maximum: sandbox::Limits {
                cpu: seconds(self.code_max_cpu_seconds),
                memory: self.code_max_memory_mb.max(1) << 20,
                wall: seconds(self.code_max_wall_seconds),
                ..sandbox::Limits::maximum()
            },
        }
    }

    pub fn db_config(&self) -> store::DbConfig {
        store::DbConfig {
            url: self.database_url.clone().filter(|u| !u.trim().is_empty()),
            data_dir: self.data_dir.clone(),
            max_connections: self.db_connections,
        }
    }
}
