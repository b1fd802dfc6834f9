//! Timeout triggers: "N seconds without a message from the participant".
//!
//! A participant's message to the published version arms one timer per
//! active timeout trigger of that version (replacing the session's earlier
//! timer for the trigger, so an answer stops it). The trigger's seconds,
//! times and action are copied into the timer: editing the trigger later
//! never changes a timer already armed. The scan ([`tick`]) reads timers by
//! due time through an index, so its cost follows the due ones, not the
//! number of idle sessions; each due timer is advanced with a compare on
//! its firing count, so with several processes exactly one of them fires
//! it, and the firing is an `event.fire` job keyed by (trigger, session,
//! message, attempt). After the last of its `times` firings the timer goes
//! and the version's `last_timeout` triggers fire.
//!
//! Decision: "the published version" is the one a participant's messages
//! run by default; a chatbot with no published version arms no timers
//! (publish it to turn its timeouts on), and a turn run on a chosen
//! version (the console's "try it") arms none either.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use store::entity::{message, timeout_timer};

use crate::event_triggers::{self, EventKind, Happened};
use crate::ids::{ChatbotId, MessageId, SessionId, TeamId};
use crate::jobs::{EventFire, EventFirePayload, NewJob};
use crate::messages::MessageRole;
use crate::{Domain, Result, Tx};

/// Timers one scan takes at most (the rest wait for the next scan).
pub const SCAN_BATCH: u64 = 500;

/// Arms (or re-arms) the session's timers for the timeout triggers of the
/// published version `chatbot_row`, from the participant's
/// message `message_id` at `at`.
pub async fn arm(
    tx: &Tx<'_>,
    team_id: TeamId,
    session_id: SessionId,
    chatbot_row: ChatbotId,
    triggers: &[event_triggers::Trigger],
    message_id: MessageId,
    at: DateTime<Utc>,
) -> Result<()> {
    for (index, timeout, action) in event_triggers::timeouts(triggers) {
        let row = timeout_timer::ActiveModel {
            team_id: sea_orm::Set(team_id.0),
            session_id: sea_orm::Set(session_id.0),
            chatbot_row: sea_orm::Set(chatbot_row.0),
            trigger_index: sea_orm::Set(i32::try_from(index).unwrap_or(i32::MAX)),
            reference_message_id: sea_orm::Set(message_id.0),
            seconds: sea_orm::Set(timeout.seconds),
            times: sea_orm::Set(timeout.times),
            fired: sea_orm::Set(0),
            action: sea_orm::Set(serde_json::to_value(action).unwrap_or_default()),
            next_at: sea_orm::Set(store::truncate_micros(
                at + Duration::seconds(timeout.seconds),
            )),
            created_at: sea_orm::Set(store::now()),
            updated_at: sea_orm::Set(store::now()),
            ..Default::default()
        };
        timeout_timer::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    timeout_timer::Column::SessionId,
                    timeout_timer::Column::ChatbotRow,
                    timeout_timer::Column::TriggerIndex,
                ])
                .update_columns([
                    timeout_timer::Column::ReferenceMessageId,
                    timeout_timer::Column::Seconds,
                    timeout_timer::Column::Times,
                    timeout_timer::Column::Fired,
                    timeout_timer::Column::Action,
                    timeout_timer::Column::NextAt,
                    timeout_timer::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&**tx)
            .await?;
    }
    Ok(())
}

/// Fires every timer due at `now`; returns how many fired.
pub async fn tick(domain: &Domain, now: DateTime<Utc>) -> Result<usize> {
    let due = timeout_timer::Entity::find()
        .filter(timeout_timer::Column::NextAt.lte(now))
        .order_by_asc(timeout_timer::Column::NextAt)
        .limit(SCAN_BATCH)
        .all(&domain.db.write)
        .await?;
    let mut fired = 0;
    for t in due {
        if fire_one(domain, &t).await? {
            fired += 1;
        }
    }
    Ok(fired)
}

async fn fire_one(domain: &Domain, t: &timeout_timer::Model) -> Result<bool> {
    let tx = domain.begin().await?;
    let mine = || {
        timeout_timer::Entity::delete_many()
            .filter(timeout_timer::Column::Id.eq(t.id))
            .filter(timeout_timer::Column::Fired.eq(t.fired))
            .filter(timeout_timer::Column::ReferenceMessageId.eq(t.reference_message_id))
    };
    // The participant answered since (the timer of a version no longer
    // published is not re-armed): the timer goes without firing.
    let answered = message::Entity::find()
        .filter(message::Column::SessionId.eq(t.session_id))
        .filter(message::Column::Role.eq(MessageRole::Human.as_str()))
        .filter(message::Column::Id.gt(t.reference_message_id))
        .count(&*tx)
        .await?
        > 0;
    if answered {
        mine().exec(&*tx).await?;
        tx.commit().await?;
        return Ok(false);
    }
    let attempt = t.fired + 1;
    let last = attempt >= t.times;
    // Only the process whose compare succeeds fires it.
    let taken = if last {
        mine().exec(&*tx).await?.rows_affected
    } else {
        timeout_timer::Entity::update_many()
            .col_expr(timeout_timer::Column::Fired, Expr::value(attempt))
            .col_expr(
                timeout_timer::Column::NextAt,
                Expr::value(store::truncate_micros(
                    t.next_at + Duration::seconds(t.seconds),
                )),
            )
            .col_expr(timeout_timer::Column::UpdatedAt, Expr::value(store::now()))
            .filter(timeout_timer::Column::Id.eq(t.id))
            .filter(timeout_timer::Column::Fired.eq(t.fired))
            .filter(timeout_timer::Column::ReferenceMessageId.eq(t.reference_message_id))
            .exec(&*tx)
            .await?
            .rows_affected
    };
    if taken == 0 {
        return Ok(false);
    }
    let (team_id, session_id, row) = (
        TeamId(t.team_id),
        SessionId(t.session_id),
        ChatbotId(t.chatbot_row),
    );
    let action = serde_json::from_value(t.action.clone())
        .map_err(|e| crate::Error::internal_from("decoding a timer's action", e))?;
    let reference = format!("{}:{attempt}", t.reference_message_id);
    tx.enqueue(
        NewJob::<EventFire>::new(EventFirePayload {
            session_id,
            chatbot_row: row,
            trigger: usize::try_from(t.trigger_index).unwrap_or_default(),
            on: format!("timeout:{}s", t.seconds),
            action,
            reference: reference.clone(),
        })
        .team(team_id)
        .session(session_id)
        .idempotency_key(format!(
            "event:{row}:{}:{session_id}:{reference}",
            t.trigger_index
        )),
    )
    .await?;
    if last {
        let triggers = store::entity::chatbot::Entity::find_by_id(t.chatbot_row)
            .one(&*tx)
            .await?
            .map(|c| event_triggers::of_config(&c.config))
            .unwrap_or_default();
        event_triggers::fire(
            &tx,
            Happened {
                team_id,
                session_id,
                chatbot_row: row,
                triggers: &triggers,
                kind: EventKind::LastTimeout,
                ended_by: None,
                reference: format!("{}:{}", t.reference_message_id, t.trigger_index),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}
