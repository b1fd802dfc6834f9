//! Scheduled bot messages: one-off, every N seconds, or by cron in the
//! participant's timezone. A ticker (in every `serve` and `worker` process)
//! claims due schedules and enqueues one delivery job per firing, in one
//! transaction; PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so processes
//! never take the same row, and the job's idempotency key
//! (`schedule:<id>:<firing>`) makes a firing enqueue at most once.
//!
//! A schedule that came due while nothing ran fires once when a ticker
//! returns, and its next time is the first one after that moment: missed
//! occurrences are not replayed one by one.

use std::str::FromStr;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Set,
    Statement, TransactionTrait, Value as DbValue,
};
use serde_json::json;
use store::entity::schedule;

/// A schedule as stored.
pub use store::entity::schedule::Model as Schedule;

use crate::ids::{ScheduleId, TeamId};
use crate::jobs::{self, NewJob, ScheduleFire, ScheduleFirePayload};
use crate::text_enum::{stored, text_enum};
use crate::{Db, Error, Result};

text_enum!(
    /// Where a schedule is: waiting, claimed by a tick, done, stopped.
    pub enum ScheduleStatus {
        Scheduled = "scheduled",
        /// Claimed by a tick; its delivery job runs.
        Firing = "firing",
        Complete = "complete",
        Cancelled = "cancelled",
        Failed = "failed",
    }
);

/// A schedule row's status.
pub fn status(s: &schedule::Model) -> Result<ScheduleStatus> {
    stored(&s.status)
}

/// How a schedule repeats.
#[derive(Debug, Clone, PartialEq)]
pub enum Recurrence {
    Once,
    Every(chrono::Duration),
    Cron { expr: String, tz: Tz },
}

pub fn recurrence(s: &schedule::Model) -> Result<Recurrence> {
    recurrence_of(s.cron.as_deref(), s.timezone.as_deref(), s.interval_seconds)
}

fn recurrence_of(
    cron: Option<&str>,
    timezone: Option<&str>,
    interval_seconds: Option<i32>,
) -> Result<Recurrence> {
    if let Some(c) = cron {
        let tz = timezone.map_or(Ok(Tz::UTC), |t| {
            t.parse::<Tz>()
                .map_err(|_| Error::BadRequest(format!("unknown timezone {t:?}")))
        })?;
        croner::Cron::from_str(c)
            .map_err(|e| Error::BadRequest(format!("invalid cron expression {c:?}: {e}")))?;
        return Ok(Recurrence::Cron {
            expr: c.to_string(),
            tz,
        });
    }
    Ok(match interval_seconds {
        Some(secs) if secs > 0 => Recurrence::Every(chrono::Duration::seconds(i64::from(secs))),
        _ => Recurrence::Once,
    })
}

/// The first occurrence strictly after `after` (for `Every`, on the grid that
/// started at `anchor`), or `None` for a one-off.
pub fn next_after(
    r: &Recurrence,
    anchor: DateTime<Utc>,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match r {
        Recurrence::Once => None,
        Recurrence::Every(step) => {
            let step_s = step.num_seconds().max(1);
            let elapsed = (after - anchor).num_seconds();
            let k = if elapsed < 0 { 0 } else { elapsed / step_s + 1 };
            Some(anchor + chrono::Duration::seconds(k * step_s))
        }
        Recurrence::Cron { expr, tz } => {
            let cron = croner::Cron::from_str(expr).ok()?;
            let local = after.with_timezone(tz);
            cron.find_next_occurrence(&local, false)
                .ok()
                .map(|t| t.with_timezone(&Utc))
                .map(|t| t.with_nanosecond(0).unwrap_or(t))
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub team_id: TeamId,
    pub chatbot_family_id: i64,
    pub participant_id: i64,
    pub external_id: String,
    pub name: String,
    pub prompt: String,
    pub first_at: DateTime<Utc>,
    pub interval_seconds: Option<i32>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    /// How many times it fires; 0 = until the end date (or forever).
    pub repetitions: i32,
    pub end_date: Option<DateTime<Utc>>,
}

/// Creates a schedule (recurring ones included), validating its recurrence.
pub async fn create(db: &Db, n: NewSchedule) -> Result<schedule::Model> {
    create_in(&db.write, n).await
}

/// `create` on any writer (inside a turn's transaction, say). The recurrence
/// is checked before anything is written.
pub async fn create_in(db: &impl crate::conn::Writes, n: NewSchedule) -> Result<schedule::Model> {
    recurrence_of(n.cron.as_deref(), n.timezone.as_deref(), n.interval_seconds)?;
    let now = store::now();
    let am = schedule::ActiveModel {
        team_id: Set(n.team_id.0),
        external_id: Set(n.external_id),
        chatbot_id: Set(n.chatbot_family_id),
        participant_id: Set(n.participant_id),
        name: Set(n.name.clone()),
        prompt: Set(n.prompt.clone()),
        next_trigger_at: Set(store::truncate_micros(n.first_at)),
        timezone: Set(n.timezone),
        interval_seconds: Set(n.interval_seconds),
        cron: Set(n.cron),
        repetitions: Set(n.repetitions),
        total_triggers: Set(0),
        end_date: Set(n.end_date),
        status: Set(ScheduleStatus::Scheduled.as_str().into()),
        cancelled_at: Set(None),
        cancelled_by: Set(None),
        last_triggered_at: Set(None),
        last_error: Set(None),
        params: Set(json!({"name": n.name, "prompt_text": n.prompt})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    Ok(am.insert(db.writer()).await?)
}

/// A fresh public id for a schedule.
/// A schedule by its external id.
pub async fn by_external_id(
    db: &impl crate::conn::Reads,
    external_id: &str,
) -> Result<Option<schedule::Model>> {
    Ok(schedule::Entity::find()
        .filter(schedule::Column::ExternalId.eq(external_id.to_string()))
        .one(db.reader())
        .await?)
}

pub fn new_external_id() -> String {
    hex::encode(&uuid::Uuid::new_v4().as_bytes()[..6])
}

/// A change a chatbot's reminder tools make to the participant's schedules,
/// written with the turn.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleChange {
    Create(NewSchedule),
    /// Cancels a pending schedule of the participant with the chatbot.
    Cancel {
        external_id: String,
    },
    /// Moves a pending schedule's next firing.
    Move {
        external_id: String,
        to: DateTime<Utc>,
    },
}

/// Applies a reminder tool's change for `participant_id` with `family_id`.
pub async fn apply(
    db: &impl crate::conn::Writes,
    participant_id: crate::ParticipantId,
    family_id: crate::ChatbotId,
    change: &ScheduleChange,
) -> Result<()> {
    let now = store::now();
    let pending = |id: &str| {
        schedule::Entity::update_many()
            .filter(schedule::Column::ExternalId.eq(id.to_string()))
            .filter(schedule::Column::ParticipantId.eq(participant_id))
            .filter(schedule::Column::ChatbotId.eq(family_id))
            .filter(schedule::Column::Status.eq(ScheduleStatus::Scheduled))
            .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
    };
    match change {
        ScheduleChange::Create(n) => {
            create_in(db, n.clone()).await?;
        }
        ScheduleChange::Cancel { external_id } => {
            pending(external_id)
                .col_expr(
                    schedule::Column::Status,
                    Expr::value(ScheduleStatus::Cancelled),
                )
                .col_expr(schedule::Column::CancelledAt, Expr::value(now))
                .exec(db.writer())
                .await?;
        }
        ScheduleChange::Move { external_id, to } => {
            pending(external_id)
                .col_expr(
                    schedule::Column::NextTriggerAt,
                    Expr::value(store::truncate_micros(*to)),
                )
                .exec(db.writer())
                .await?;
        }
    }
    Ok(())
}

const CLAIM_SQLITE: &str = "UPDATE schedules SET status = 'firing', updated_at = ? \
     WHERE id IN (SELECT id FROM schedules WHERE status = 'scheduled' AND next_trigger_at <= ? \
     ORDER BY next_trigger_at, id LIMIT ?) RETURNING id, total_triggers, team_id";
const CLAIM_POSTGRES: &str = "UPDATE schedules SET status = 'firing', updated_at = $1 \
     WHERE id IN (SELECT id FROM schedules WHERE status = 'scheduled' AND next_trigger_at <= $2 \
     ORDER BY next_trigger_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id, total_triggers, team_id";

/// One scheduler tick at `now`: claims up to `batch` due schedules and
/// enqueues their deliveries, in one transaction. Returns how many fired.
pub async fn tick(db: &Db, now: DateTime<Utc>, batch: u32) -> Result<usize> {
    let backend = db.backend();
    let sql = if backend == DbBackend::Postgres {
        CLAIM_POSTGRES
    } else {
        CLAIM_SQLITE
    };
    let values: Vec<DbValue> = vec![store::now().into(), now.into(), i64::from(batch).into()];
    let txn = db.write.begin().await?;
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let mut fired = 0;
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let n: i32 = row.try_get("", "total_triggers")?;
        let team: i64 = row.try_get("", "team_id")?;
        let firing = i64::from(n) + 1;
        let job = NewJob::<ScheduleFire>::new(ScheduleFirePayload {
            schedule_id: ScheduleId(id),
            firing,
            due_at: now,
        })
        .idempotency_key(format!("schedule:{id}:{firing}"))
        .team(TeamId(team));
        jobs::enqueue(&txn, job).await?;
        fired += 1;
    }
    txn.commit().await?;
    Ok(fired)
}

/// A participant's pending schedules with a chatbot family, soonest first, as
/// templates see them (`participant_schedules`).
pub async fn pending_for(
    db: &impl crate::conn::Reads,
    participant_id: crate::ParticipantId,
    family_id: crate::ChatbotId,
) -> Result<serde_json::Value> {
    use sea_orm::QueryOrder;
    let rows = schedule::Entity::find()
        .filter(schedule::Column::ParticipantId.eq(participant_id))
        .filter(schedule::Column::ChatbotId.eq(family_id))
        .filter(schedule::Column::Status.eq(ScheduleStatus::Scheduled))
        .order_by_asc(schedule::Column::NextTriggerAt)
        .all(db.reader())
        .await?;
    Ok(serde_json::Value::Array(
        rows.into_iter()
            .map(|s| {
                json!({
                    "id": s.external_id,
                    "name": s.name,
                    "prompt": s.prompt,
                    "next_trigger_date": s.next_trigger_at.to_rfc3339(),
                    "repetitions": s.repetitions,
                    "total_triggers": s.total_triggers,
                })
            })
            .collect(),
    ))
}

pub async fn get(db: &Db, id: i64) -> Result<Option<schedule::Model>> {
    Ok(schedule::Entity::find_by_id(id).one(&db.write).await?)
}

/// After a delivered firing: count it and set the next time, or complete it.
pub async fn fired(db: &Db, s: &schedule::Model, at: DateTime<Utc>) -> Result<()> {
    let total = s.total_triggers + 1;
    let r = recurrence(s).unwrap_or(Recurrence::Once);
    let next = next_after(&r, s.next_trigger_at, at.max(s.next_trigger_at));
    let done = (s.repetitions > 0 && total >= s.repetitions)
        || next.is_none()
        || matches!((next, s.end_date), (Some(n), Some(end)) if n > end);
    let now = store::now();
    let mut upd = schedule::Entity::update_many()
        .col_expr(schedule::Column::TotalTriggers, Expr::value(total))
        .col_expr(schedule::Column::LastTriggeredAt, Expr::value(at))
        .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            schedule::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            schedule::Column::Status,
            Expr::value(if done {
                ScheduleStatus::Complete
            } else {
                ScheduleStatus::Scheduled
            }),
        )
        .filter(schedule::Column::Id.eq(s.id))
        .filter(schedule::Column::Status.eq(ScheduleStatus::Firing));
    if let (false, Some(n)) = (done, next) {
        upd = upd.col_expr(
            schedule::Column::NextTriggerAt,
            Expr::value(store::truncate_micros(n)),
        );
    }
    upd.exec(&db.write).await?;
    Ok(())
}

/// A firing that cannot be delivered: recorded with its reason, never silently dropped.
pub async fn failed(db: &Db, id: i64, reason: &str) -> Result<()> {
    schedule::Entity::update_many()
        .col_expr(
            schedule::Column::Status,
            Expr::value(ScheduleStatus::Failed),
        )
        .col_expr(schedule::Column::LastError, Expr::value(reason.to_string()))
        .col_expr(schedule::Column::UpdatedAt, Expr::value(store::now()))
        .filter(schedule::Column::Id.eq(id))
        .filter(schedule::Column::Status.eq(ScheduleStatus::Firing))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// Records a failed attempt that will be retried.
pub async fn attempt_failed(db: &Db, id: i64, reason: &str) -> Result<()> {
    schedule::Entity::update_many()
        .col_expr(schedule::Column::LastError, Expr::value(reason.to_string()))
        .col_expr(schedule::Column::UpdatedAt, Expr::value(store::now()))
        .filter(schedule::Column::Id.eq(id))
        .exec(&db.write)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn intervals_skip_missed_occurrences() {
        let r = Recurrence::Every(chrono::Duration::hours(1));
        let anchor = t("2026-01-01T10:00:00Z");
        assert_eq!(
            next_after(&r, anchor, t("2026-01-01T10:00:00Z")),
            Some(t("2026-01-01T11:00:00Z"))
        );
        // Down for five and a half hours: the next one is the first after now.
        assert_eq!(
            next_after(&r, anchor, t("2026-01-01T15:30:00Z")),
            Some(t("2026-01-01T16:00:00Z"))
        );
        assert_eq!(next_after(&Recurrence::Once, anchor, anchor), None);
    }

    #[test]
    fn cron_keeps_local_time_across_dst() {
        let r = Recurrence::Cron {
            expr: "0 9 * * *".into(),
            tz: chrono_tz::Europe::London,
        };
        // The clocks go forward on 2026-03-29: 09:00 local is 09:00 UTC before, 08:00 UTC after.
        assert_eq!(
            next_after(&r, t("2026-03-27T09:00:00Z"), t("2026-03-28T09:00:00Z")),
            Some(t("2026-03-29T08:00:00Z"))
        );
        assert_eq!(
            next_after(&r, t("2026-03-27T09:00:00Z"), t("2026-03-27T09:00:00Z")),
            Some(t("2026-03-28T09:00:00Z"))
        );
        // And back on 2026-10-25.
        assert_eq!(
            next_after(&r, t("2026-10-24T08:00:00Z"), t("2026-10-24T08:00:00Z")),
            Some(t("2026-10-25T09:00:00Z"))
        );
    }
}

/// A participant's schedule still to fire, as a list shows it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub chatbot: String,
    pub name: String,
    pub prompt: String,
    pub next_at: DateTime<Utc>,
    pub repetitions: i32,
    pub total_triggers: i32,
}

/// Every schedule of a participant still to fire (any chatbot), soonest
/// first: two queries.
pub async fn pending_of(
    db: &impl crate::conn::Reads,
    participant_id: crate::ParticipantId,
) -> Result<Vec<Pending>> {
    use sea_orm::QueryOrder;
    let db = db.reader();
    let rows = schedule::Entity::find()
        .filter(schedule::Column::ParticipantId.eq(participant_id))
        .filter(schedule::Column::Status.eq(ScheduleStatus::Scheduled))
        .order_by_asc(schedule::Column::NextTriggerAt)
        .all(db)
        .await?;
    let names: std::collections::HashMap<i64, String> = store::entity::chatbot::Entity::find()
        .filter(store::entity::chatbot::Column::Id.is_in(rows.iter().map(|r| r.chatbot_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|s| Pending {
            chatbot: names.get(&s.chatbot_id).cloned().unwrap_or_default(),
            name: s.name,
            prompt: s.prompt,
            next_at: s.next_trigger_at,
            repetitions: s.repetitions,
            total_triggers: s.total_triggers,
        })
        .collect())
}
