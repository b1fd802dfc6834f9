//! A counter of changes to what a turn reads and rarely changes (chatbots and
//! their versions, providers, channels, pricing rules, users): each process
//! caches those rows and reads this one counter per turn to know whether its
//! cache still holds (`domain::catalog`).
//!
//! Triggers bump it, so every writer (API, console, CLI, another server
//! process, a hand-run SQL statement) is seen without each write path having
//! to remember it. The bump is an UPDATE in the writer's transaction: it
//! becomes visible exactly when the change does, never before (a sequence
//! would be visible before the change commits, and a process could cache the
//! old rows under the new number).

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables whose rows the catalog caches.
const WATCHED: &[&str] = &[
    "chatbots",
    "providers",
    "channels",
    "pricing_rules",
    "users",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE TABLE config_epoch (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)",
        )
        .await?;
        db.execute_unprepared("INSERT INTO config_epoch (id, n) VALUES (1, 0)")
            .await?;
        match m.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE FUNCTION bump_config_epoch() RETURNS trigger AS $$ \
                     BEGIN UPDATE config_epoch SET n = n + 1 WHERE id = 1; RETURN NULL; END \
                     $$ LANGUAGE plpgsql",
                )
                .await?;
                for t in WATCHED {
                    // Once per statement: a bulk change bumps it once.
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {t}_config_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE \
                         ON {t} FOR EACH STATEMENT EXECUTE FUNCTION bump_config_epoch()"
                    ))
                    .await?;
                }
            }
            _ => {
                // SQLite has row triggers only.
                for t in WATCHED {
                    for op in ["INSERT", "UPDATE", "DELETE"] {
                        db.execute_unprepared(&format!(
                            "CREATE TRIGGER {t}_config_epoch_{} AFTER {op} ON {t} \
                             BEGIN UPDATE config_epoch SET n = n + 1 WHERE id = 1; END",
                            op.to_lowercase()
                        ))
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        match m.get_database_backend() {
            DbBackend::Postgres => {
                for t in WATCHED {
                    db.execute_unprepared(&format!("DROP TRIGGER {t}_config_epoch ON {t}"))
                        .await?;
                }
                db.execute_unprepared("DROP FUNCTION bump_config_epoch()")
                    .await?;
            }
            _ => {
                for t in WATCHED {
                    for op in ["insert", "update", "delete"] {
                        db.execute_unprepared(&format!("DROP TRIGGER {t}_config_epoch_{op}"))
                            .await?;
                    }
                }
            }
        }
        db.execute_unprepared("DROP TABLE config_epoch").await?;
        Ok(())
    }
}
