//! The daily usage rollups (`store::usage_rollups`) kept in the write path.
//!
//! A transaction notes what it wrote that the rollups summarise (messages,
//! sessions leaving setup, usage records with their tokens and cost) on the
//! [`crate::Tx`]; just before it commits, [`write`] adds those rows' counts
//! with one upsert into `usage_days` and, when a human message may have made
//! a participant active, one insert into `usage_active`. The counts are read
//! from the rows themselves inside the transaction, with the same SQL the
//! migration and a recount use, so whether a session is out of setup is what
//! the transaction is about to commit, not what a caller read earlier.
//!
//! On PostgreSQL two transactions can race on a session in setup: one writes
//! a message into it while the other moves it out of setup and counts the
//! messages it can see. The writer therefore locks its messages' sessions
//! that are still in setup before counting: either it waits for the move and
//! then sees the session out of setup (its messages count), or the move
//! waits for it and then sees its messages. SQLite has one writer, so no
//! such race.
//!
//! Whatever inserts messages (human or AI), moves a session out of setup or
//! records usage must note it here, or the usage page will not see it
//! (`store::usage_rollups::recount` rebuilds a team's rollups from the rows).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};
use store::usage_rollups::{
    ADD_ON_CONFLICT, DAY_COLUMNS, Spans, active_insert, days_select, in_list,
};

use crate::Result;

/// What a transaction wrote that the rollups count.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Messages inserted (any role; only human and AI ones count).
    messages: Vec<i64>,
    /// Whether one of them is a human message (a participant may be active).
    human: bool,
    /// Sessions moved out of setup: they start counting, with every message
    /// they already had.
    left_setup: Vec<i64>,
    /// Usage recorded, per (team, UTC day, chatbot row or 0, model): tokens
    /// and cost. Kept from the rows as they are inserted, not read back:
    /// usage records have no index a transaction's own rows could be found by.
    spend: BTreeMap<(i64, String, i64, String), (i64, i64)>,
}

impl Pending {
    pub(crate) fn message(&mut self, id: i64, human: bool) {
        self.messages.push(id);
        self.human |= human;
    }

    pub(crate) fn left_setup(&mut self, session_id: i64) {
        self.left_setup.push(session_id);
    }

    /// A usage record as inserted (its chatbot row, or none).
    pub(crate) fn spend(
        &mut self,
        team_id: i64,
        at: DateTime<Utc>,
        chatbot_id: Option<i64>,
        model: &str,
        tokens: i64,
        cost_e8: i64,
    ) {
        let key = (
            team_id,
            at.date_naive().format("%Y-%m-%d").to_string(),
            chatbot_id.unwrap_or(0),
            model.to_string(),
        );
        let e = self.spend.entry(key).or_default();
        e.0 += tokens;
        e.1 += cost_e8;
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.left_setup.is_empty() && self.spend.is_empty()
    }
}

/// Adds a transaction's pending rows to the rollups (see the module's doc).
pub(crate) async fn write(txn: &DatabaseTransaction, p: Pending) -> Result<()> {
    if p.is_empty() {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    let messages = (!p.messages.is_empty()).then(|| in_list(&p.messages));
    let left = (!p.left_setup.is_empty()).then(|| in_list(&p.left_setup));
    if let (DbBackend::Postgres, Some(ids)) = (backend, &messages) {
        txn.execute_unprepared(&format!(
            "SELECT s.id FROM sessions s WHERE s.status = 'setup' AND s.id IN \
             (SELECT m.session_id FROM messages m WHERE m.id IN ({ids})) \
             ORDER BY s.id FOR NO KEY UPDATE OF s"
        ))
        .await?;
    }
    // A session leaving setup brings all its messages, this transaction's
    // included; the OR counts each message row once.
    let counted = match (&messages, &left) {
        (Some(m), Some(s)) => Some(format!("m.id IN ({m}) OR m.session_id IN ({s})")),
        (Some(m), None) => Some(format!("m.id IN ({m})")),
        (None, Some(s)) => Some(format!("m.session_id IN ({s})")),
        (None, None) => None,
    };
    let sessions = left.as_ref().map(|s| format!("s.id IN ({s})"));
    let spans = Spans {
        messages: counted.as_deref(),
        sessions: sessions.as_deref(),
        records: None,
        spend: p.spend.len(),
    };
    if let Some(select) = days_select(backend, &spans) {
        let mut values: Vec<Value> = Vec::with_capacity(p.spend.len() * 6);
        for ((team, day, chatbot, model), (tokens, cost)) in p.spend {
            values.extend([
                team.into(),
                day.into(),
                chatbot.into(),
                model.into(),
                tokens.into(),
                cost.into(),
            ]);
        }
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!("INSERT INTO usage_days ({DAY_COLUMNS}) {select} {ADD_ON_CONFLICT}"),
            values,
        ))
        .await?;
    }
    if let Some(filter) = counted.filter(|_| p.human || left.is_some()) {
        txn.execute_unprepared(&active_insert(backend, &filter))
            .await?;
    }
    Ok(())
}
