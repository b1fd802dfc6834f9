//! Setups several tests share: chatbots and prices, a failing pipeline,
//! migrating again from a given migration.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{TestApp, TestTeam};

/// A pipeline whose template names a variable that does not exist, after
/// a node that calls the team's `local` model: its turns fail in the
/// template, having used the model.
pub fn failing_template_pipeline() -> Value {
    json!({
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "learn", "type": "update_participant_data", "params": {
                "provider": "local", "model": "echo", "data_schema": {"name": "the name"}}},
            {"id": "t", "type": "template", "params": {"template_string": "Hi {{ nmae }}"}},
            {"id": "end", "type": "end"}
        ],
        "edges": [
            {"from": "start", "to": "learn"}, {"from": "learn", "to": "t"},
            {"from": "t", "to": "end"}
        ]
    })
}

impl TestApp {
    /// Migrates down to just before the migration `name`, then up again:
    /// what that migration and every later one do to the data already there.
    pub async fn remigrate_from(&self, name: &str) {
        use sea_orm_migration::MigratorTrait;
        let names: Vec<String> = store::migration::Migrator::migrations()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        let at = names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no migration {name}"));
        let steps = u32::try_from(names.len() - at).unwrap();
        let db = &self.domain.db.write;
        store::migration::Migrator::down(db, Some(steps))
            .await
            .unwrap();
        store::migration::Migrator::up(db, None).await.unwrap();
    }

    /// The team's price for the builtin `echo` model's input tokens, in USD
    /// per 1M tokens, from an hour ago (so every turn of the test is priced).
    pub async fn price_echo_input(&self, team: &TestTeam, usd_per_1m: &str) {
        domain::pricing::set_override(
            &self.domain.db.write,
            team.id,
            "builtin",
            "echo",
            domain::pricing::ServiceKind::Input,
            usd_per_1m,
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    }

    /// Two echo chatbots on the team's `local` provider: the first asks
    /// Telegram participants for consent (pending until given), the second
    /// does not.
    pub async fn consenting_and_plain_bots(
        &self,
        team: &TestTeam,
        names: (&str, &str),
    ) -> (Uuid, Uuid) {
        let pipeline = domain::pipeline::Pipeline::single_llm("local", "echo", "");
        let consenting = self
            .chatbot_with(
                team,
                names.0,
                json!({"pipeline": pipeline, "consent": {"text": "Agree?"}}),
            )
            .await;
        let plain = self
            .chatbot_with(team, names.1, json!({"pipeline": pipeline}))
            .await;
        (consenting, plain)
    }
}
