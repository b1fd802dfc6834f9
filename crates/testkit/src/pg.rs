//! Throwaway PostgreSQL databases for tests.

use sea_orm::{ConnectionTrait, Database};
use uuid::Uuid;

pub const ENV: &str = "CHATSTUDIO_TEST_POSTGRES_URL";

pub struct TempDatabase {
    pub admin_url: String,
    pub name: String,
    pub url: String,
    dropped: bool,
}

/// `None` (skip) when the URL is unset outside CI; a failure in CI.
pub fn admin_url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{ENV} must be set in CI: PostgreSQL tests may not be skipped");
            }
            eprintln!("skipping PostgreSQL test: {ENV} is not set");
            None
        }
    }
}

fn with_database(admin_url: &str, name: &str) -> String {
    // Replace the path (database name) of the admin URL, keeping any query.
    let (head, query) = match admin_url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let base = match head[scheme_end..].find('/') {
        Some(slash) => &head[..scheme_end + slash],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl TempDatabase {
    pub async fn create() -> Option<Self> {
        let admin_url = admin_url()?;
        let name = format!("cstest_{}", Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {ENV}: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        let _ = admin.close().await;
        Some(TempDatabase {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
            dropped: false,
        })
    }

    pub async fn drop_now(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(admin) = Database::connect(admin_url).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
        let _ = admin.close().await;
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // A test that panicked never reached `drop_now`: clean up on a thread
        // with its own runtime, since Drop cannot await.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&url, &name));
            }
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn swaps_database_name() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            super::with_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
