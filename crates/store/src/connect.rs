//! Opening the database: SQLite (embedded default) or PostgreSQL.
//!
//! SQLite gets one writer connection and a pool of readers, so writers queue
//! in-process instead of fighting over the file lock; PostgreSQL uses one pool
//! for both roles.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;

use crate::migration::Migrator;

#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `postgres://…` or `sqlite://…`; `None` means the SQLite file in `data_dir`.
    pub url: Option<String>,
    pub data_dir: PathBuf,
    pub max_connections: u32,
}

/// The two roles a connection plays. On PostgreSQL both are the same pool.
#[derive(Debug, Clone)]
pub struct Db {
    pub write: DatabaseConnection,
    pub read: DatabaseConnection,
    /// SQL statements run through this handle (tests and benchmarks count
    /// statements per request with it).
    pub statements: Arc<AtomicU64>,
}

/// Counts every statement run on `conn`; at `trace` level (target
/// `chatstudio::sql`) also logs it with its time, which is how a request's
/// statements are listed when hunting for extra round trips.
fn counted(
    mut conn: DatabaseConnection,
    counter: &Arc<AtomicU64>,
    role: &'static str,
) -> DatabaseConnection {
    let c = counter.clone();
    conn.set_metric_callback(move |info| {
        c.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(
            target: "chatstudio::sql",
            role,
            micros = u64::try_from(info.elapsed.as_micros()).unwrap_or(u64::MAX),
            failed = info.failed,
            sql = %info.statement.sql,
        );
    });
    conn
}

impl Db {
    pub fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    pub fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.write, None).await
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.read.ping().await
    }

    pub async fn close(self) {
        // Closing twice on PostgreSQL (same pool) is harmless but noisy; close the
        // reader only when it is a distinct pool.
        let same = self.backend() != DbBackend::Sqlite;
        let _ = self.write.close().await;
        if !same {
            let _ = self.read.close().await;
        }
    }
}

/// Creates the data dir (0700) and the SQLite file (0600) when they do not
/// exist yet, so the database, which holds sealed credentials and everyone's
/// conversations, is readable by the server's user only. SQLite gives its
/// `-wal` and `-shm` files the database file's mode. An existing directory
/// or file keeps the mode its operator gave it.
fn private_files(dir: &std::path::Path, file: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn connect(cfg: &DbConfig) -> Result<Db, DbErr> {
    let url = match &cfg.url {
        Some(u) if !u.is_empty() => u.clone(),
        _ => {
            let file = cfg.data_dir.join("chatstudio.sqlite3");
            private_files(&cfg.data_dir, &file).map_err(|e| {
                DbErr::Custom(format!(
                    "cannot create data dir {}: {e}",
                    cfg.data_dir.display()
                ))
            })?;
            format!("sqlite://{}", file.display())
        }
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut opts = ConnectOptions::new(url);
        opts.max_connections(cfg.max_connections.max(2))
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        let statements = Arc::new(AtomicU64::new(0));
        let pool = counted(Database::connect(opts).await?, &statements, "pool");
        return Ok(Db {
            write: pool.clone(),
            read: pool,
            statements,
        });
    }
    if !url.starts_with("sqlite:") {
        return Err(DbErr::Custom(format!(
            "unsupported database URL (expected postgres:// or sqlite://): {}",
            redact_url(&url)
        )));
    }
    let statements = Arc::new(AtomicU64::new(0));
    let write = counted(
        Database::connect(sqlite_options(&url, 1)).await?,
        &statements,
        "write",
    );
    let read = counted(
        Database::connect(sqlite_options(&url, cfg.max_connections.max(1))).await?,
        &statements,
        "read",
    );
    Ok(Db {
        write,
        read,
        statements,
    })
}

fn sqlite_options(url: &str, max: u32) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o: SqliteConnectOptions| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    opts
}

/// A URL with its password replaced, safe for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
