//! Schema migrations. One definition emits both SQLite and PostgreSQL DDL via
//! SeaQuery; each later feature adds its own migration file here.

use sea_orm_migration::prelude::*;

mod m0001_foundation;
mod m0002_conversations;
mod m0003_sessions_participants_files;
mod m0004_jobs_widget;
mod m0005_inbound_events;
mod m0006_summary_index;
mod m0007_pipeline_runs;
mod m0008_custom_actions;
mod m0009_timeout_timers;
mod m0010_messaging;
mod m0011_session_order;
mod m0012_console_sign_in;
mod m0013_console_list_indexes;
mod m0014_session_counts;
mod m0015_oauth;
mod m0016_usage_rollups;
mod m0017_config_epoch;
mod util;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_foundation::Migration),
            Box::new(m0002_conversations::Migration),
            Box::new(m0003_sessions_participants_files::Migration),
            Box::new(m0004_jobs_widget::Migration),
            Box::new(m0005_inbound_events::Migration),
            Box::new(m0006_summary_index::Migration),
            Box::new(m0007_pipeline_runs::Migration),
            Box::new(m0008_custom_actions::Migration),
            Box::new(m0009_timeout_timers::Migration),
            Box::new(m0010_messaging::Migration),
            Box::new(m0011_session_order::Migration),
            Box::new(m0012_console_sign_in::Migration),
            Box::new(m0013_console_list_indexes::Migration),
            Box::new(m0014_session_counts::Migration),
            Box::new(m0015_oauth::Migration),
            Box::new(m0016_usage_rollups::Migration),
            Box::new(m0017_config_epoch::Migration),
        ]
    }
}
