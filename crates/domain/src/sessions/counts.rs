//! Exact session counts per (team, chatbot row, status, platform), kept in
//! the write path so a list's first-page `count` sums a few counter rows
//! (one range of their primary key) instead of counting up to millions of
//! sessions.
//!
//! Every write that adds a session or changes its status goes through here
//! ([`super::create`], [`move_status`]) and records its change on the
//! transaction ([`crate::Tx::count_session`]); the transaction writes the
//! net changes just before it commits ([`write`]), so a rollback leaves the
//! counters alone. Nothing deletes sessions yet, nor moves one to another
//! chatbot, platform or team; whatever does must count here too. A session
//! goes with its team or chatbot (cascade), and so do its counter rows.

use std::collections::BTreeMap;

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    QueryTrait, UpdateMany,
};
use store::entity::{session, session_count};

use super::SessionStatus;
use crate::channels::Platform;
use crate::ids::{SessionId, TeamId};
use crate::{Error, Result, Tx};

/// One counter: a team's sessions of one chatbot row, status and platform
/// ('' when the session has none, as the column stores it). Ordered, so a
/// transaction updates its counters in one global order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    team_id: i64,
    chatbot_id: i64,
    status: String,
    platform: String,
}

impl Key {
    /// The counter a session row is in now.
    pub(crate) fn of(row: &session::Model) -> Key {
        Key {
            team_id: row.team_id,
            chatbot_id: row.chatbot_id,
            status: row.status.clone(),
            platform: row.platform.clone().unwrap_or_default(),
        }
    }

    fn with_status(&self, status: SessionStatus) -> Key {
        Key {
            status: status.as_str().to_string(),
            ..self.clone()
        }
    }
}

/// A transaction's counter changes, net per counter.
pub(crate) type Deltas = BTreeMap<Key, i64>;

/// Writes a transaction's net counter changes (an upsert adding to `n`, so
/// concurrent writers on PostgreSQL add up rather than overwrite): one
/// statement, rows in key order, nothing when every change cancelled out.
pub(crate) async fn write(txn: &DatabaseTransaction, deltas: Deltas) -> Result<()> {
    use session_count::Column as C;
    let mut rows = deltas.into_iter().filter(|(_, d)| *d != 0).peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let mut q = Query::insert();
    q.into_table(session_count::Entity).columns([
        C::TeamId,
        C::ChatbotId,
        C::Status,
        C::Platform,
        C::N,
    ]);
    for (k, d) in rows {
        q.values([
            k.team_id.into(),
            k.chatbot_id.into(),
            k.status.into(),
            k.platform.into(),
            d.into(),
        ])
        .map_err(|e| Error::internal(format!("session counts: {e}")))?;
    }
    q.on_conflict(
        OnConflict::columns([C::TeamId, C::ChatbotId, C::Status, C::Platform])
            .value(
                C::N,
                Expr::col((session_count::Entity, C::N)).add(Expr::cust("excluded.n")),
            )
            .to_owned(),
    );
    txn.execute(&q).await?;
    Ok(())
}

/// Moves a session from `from` to `to` (setting `also`'s columns with it)
/// if it is in `from`, and counts the move. The row as it is now, or `None`
/// when it was not in `from`: the condition, not a read before, says which
/// counter it leaves, so a concurrent move cannot make the counts drift.
pub(crate) async fn move_status(
    tx: &Tx<'_>,
    id: SessionId,
    from: SessionStatus,
    to: SessionStatus,
    also: impl FnOnce(UpdateMany<session::Entity>) -> UpdateMany<session::Entity>,
) -> Result<Option<session::Model>> {
    let q = session::Entity::update_many()
        .col_expr(session::Column::Status, Expr::value(to))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::Status.eq(from));
    let Some(row) = also(q).exec_with_returning(&**tx).await?.pop() else {
        return Ok(None);
    };
    if from == SessionStatus::Setup {
        tx.usage().left_setup(row.id);
    }
    let now = Key::of(&row);
    tx.count_session(now.with_status(from), -1);
    tx.count_session(now, 1);
    Ok(Some(row))
}

/// How many of the team's sessions have one of `chatbots` (rows; any when
/// `None`), `status` and `platform` (any when `None`), from the counters.
pub(crate) async fn total<C: ConnectionTrait>(
    db: &C,
    team_id: TeamId,
    chatbots: Option<&[i64]>,
    status: Option<SessionStatus>,
    platform: Option<Platform>,
) -> Result<u64> {
    use session_count::Column as C;
    let n: Option<i64> = session_count::Entity::find()
        .select_only()
        // SUM of a bigint is numeric on PostgreSQL; the cast reads alike on both.
        .column_as(Expr::cust("CAST(COALESCE(SUM(n), 0) AS BIGINT)"), "n")
        .filter(C::TeamId.eq(team_id))
        .apply_if(chatbots, |q, rows| {
            q.filter(C::ChatbotId.is_in(rows.iter().copied()))
        })
        .apply_if(status, |q, s| q.filter(C::Status.eq(s)))
        .apply_if(platform, |q, p| q.filter(C::Platform.eq(p)))
        .into_tuple()
        .one(db)
        .await?;
    // Never below zero: a counter only goes down for a session it counted.
    Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
}
