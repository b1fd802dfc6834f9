//! Usage per day for a team (the console's usage page), with the shared
//! activity definitions: messages are human and AI messages only, active
//! participants are those who wrote a human message, sessions still in
//! `setup` never count, and a day is the half-open UTC window
//! `[00:00, 24:00)`. Archived chatbots count like any other.
//!
//! The numbers come from the daily rollups ([`rollups`],
//! `store::usage_rollups`), kept in the write path: a page over any range is
//! a few index ranges of a few hundred rows, whatever the team's size. Rust
//! only lays the grouped rows out per day and chatbot family.

pub(crate) mod rollups;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryResult};
use store::entity::{chatbot, usage_active, usage_day};
use uuid::Uuid;

use crate::conn::Reads;
use crate::{Domain, Error, Result, TeamId};

/// The longest range asked at once (a leap year).
pub const MAX_DAYS: i64 = 366;

/// One day's (or the range's) numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Human and AI messages.
    pub messages: i64,
    /// Sessions started (out of setup).
    pub sessions: i64,
    /// Distinct participants who wrote a human message.
    pub participants: i64,
    /// Cost in 1e-8 USD.
    pub cost_e8: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub date: NaiveDate,
    pub counts: Counts,
}

/// One chatbot family over the range; `id` is `None` for spend that no
/// chatbot made (an evaluation's judge calls, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatbotUsage {
    pub id: Option<Uuid>,
    pub name: String,
    pub messages: i64,
    pub cost_e8: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsage {
    pub model: String,
    pub tokens: i64,
    pub cost_e8: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Every day of the range, oldest first, days without activity included.
    pub days: Vec<Day>,
    /// Over the range: a participant active on several days counts once.
    pub totals: Counts,
    /// Most messages first.
    pub chatbots: Vec<ChatbotUsage>,
    /// Most tokens first.
    pub models: Vec<ModelUsage>,
}

/// A checked range of whole UTC days, as instants: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The days `from` to `to`, both included; refuses an inverted or too long range.
pub fn window(from: NaiveDate, to: NaiveDate) -> Result<Window> {
    if from > to {
        return Err(Error::BadRequest(format!(
            "The range starts ({from}) after it ends ({to})."
        )));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_DAYS {
        return Err(Error::BadRequest(format!(
            "The range is {days} days long; at most {MAX_DAYS} are shown at once."
        )));
    }
    let after = to
        .succ_opt()
        .ok_or_else(|| Error::BadRequest(format!("{to} is out of range.")))?;
    Ok(Window {
        from,
        to,
        start: from.and_time(NaiveTime::MIN).and_utc(),
        end: after.and_time(NaiveTime::MIN).and_utc(),
    })
}

/// Every day of the window with its counts (zeros where nothing happened);
/// counts for days outside the window are dropped.
pub fn fill(w: &Window, counts: &BTreeMap<NaiveDate, Counts>) -> Vec<Day> {
    w.from
        .iter_days()
        .take_while(|d| *d <= w.to)
        .map(|date| Day {
            date,
            counts: counts.get(&date).copied().unwrap_or_default(),
        })
        .collect()
}

/// The team's usage per day from `from` to `to` (both included), of one
/// chatbot family (any of its versions, given its or a version's public id)
/// or of all.
pub async fn daily(
    domain: &Domain,
    team_id: TeamId,
    from: NaiveDate,
    to: NaiveDate,
    chatbot: Option<Uuid>,
) -> Result<Usage> {
    let w = window(from, to)?;
    let db = domain.reader();
    // Every chatbot row of the team (versions and archived ones too): they
    // name the families and say which rows a family filter takes.
    let rows = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .all(db)
        .await?;
    let family_of_row: HashMap<i64, i64> = rows
        .iter()
        .map(|c| (c.id, c.working_version_id.unwrap_or(c.id)))
        .collect();
    let only = match chatbot {
        Some(id) => {
            let head = rows
                .iter()
                .find(|c| c.public_id == id)
                .ok_or_else(|| Error::not_found(crate::chatbots::NOT_FOUND))?;
            let family = head.working_version_id.unwrap_or(head.id);
            Some(
                family_of_row
                    .iter()
                    .filter(|(_, f)| **f == family)
                    .map(|(row, _)| *row)
                    .collect::<Vec<i64>>(),
            )
        }
        None => None,
    };
    let f = Filter {
        team_id,
        window: w,
        rows: only,
    };

    let mut per_day: BTreeMap<NaiveDate, Counts> = BTreeMap::new();
    let mut totals = Counts::default();
    for row in db.query_all(&f.per_day()).await? {
        let c = per_day.entry(day_of(&row)?).or_default();
        c.messages = sum_of(&row, "messages")?;
        c.sessions = sum_of(&row, "sessions")?;
        c.cost_e8 = sum_of(&row, "cost_e8")?;
        totals.messages += c.messages;
        totals.sessions += c.sessions;
        totals.cost_e8 += c.cost_e8;
    }
    for row in db.query_all(&f.active(true)).await? {
        per_day.entry(day_of(&row)?).or_default().participants = sum_of(&row, "n")?;
    }
    if let Some(row) = db.query_one(&f.active(false)).await? {
        totals.participants = sum_of(&row, "n")?;
    }
    let mut per_family: HashMap<Option<i64>, (i64, i64)> = HashMap::new();
    for row in db.query_all(&f.per_chatbot_row()).await? {
        let id: i64 = row.try_get("", "chatbot_id")?;
        // A row of another team's or a removed chatbot is spend no chatbot
        // of this team made.
        let family = family_of_row.get(&id).copied();
        let e = per_family.entry(family).or_default();
        e.0 += sum_of(&row, "messages")?;
        e.1 += sum_of(&row, "cost_e8")?;
    }
    let mut models = Vec::new();
    for row in db.query_all(&f.models()).await? {
        models.push(ModelUsage {
            model: row.try_get("", "model")?,
            tokens: sum_of(&row, "tokens")?,
            cost_e8: sum_of(&row, "cost_e8")?,
        });
    }
    models.sort_by(|a, b| b.tokens.cmp(&a.tokens).then_with(|| a.model.cmp(&b.model)));

    Ok(Usage {
        from: w.from,
        to: w.to,
        days: fill(&w, &per_day),
        totals,
        chatbots: name_families(&rows, per_family),
        models,
    })
}

fn name_families(
    rows: &[chatbot::Model],
    per_family: HashMap<Option<i64>, (i64, i64)>,
) -> Vec<ChatbotUsage> {
    let heads: HashMap<i64, &chatbot::Model> = rows.iter().map(|c| (c.id, c)).collect();
    let mut out: Vec<ChatbotUsage> = per_family
        .into_iter()
        // A family with nothing in the range (only a zero row) is left out.
        .filter(|(_, (messages, cost_e8))| *messages != 0 || *cost_e8 != 0)
        .map(|(fam, (messages, cost_e8))| {
            let head = fam.and_then(|f| heads.get(&f));
            ChatbotUsage {
                id: head.map(|h| h.public_id),
                name: head.map_or_else(|| "No chatbot".to_string(), |h| h.name.clone()),
                messages,
                cost_e8,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.messages
            .cmp(&a.messages)
            .then_with(|| b.cost_e8.cmp(&a.cost_e8))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

fn day_of(row: &QueryResult) -> Result<NaiveDate> {
    let text: String = row.try_get("", "day")?;
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|e| Error::internal_from(format!("a day the database gave: {text:?}"), e))
}

fn sum_of(row: &QueryResult, column: &str) -> Result<i64> {
    Ok(row.try_get::<Option<i64>>("", column)?.unwrap_or(0))
}

// SUM of a BIGINT is NUMERIC on PostgreSQL: cast back for one decode path.
fn sum(column: &str) -> Expr {
    Expr::cust(format!("CAST(SUM({column}) AS BIGINT)"))
}

/// One range of rollup rows: a team's days in the window, of some chatbot
/// rows or all.
struct Filter {
    team_id: TeamId,
    window: Window,
    rows: Option<Vec<i64>>,
}

impl Filter {
    fn days(&self) -> (String, String) {
        let f = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        (f(self.window.from), f(self.window.to))
    }

    fn of<T: sea_orm::Iden + Copy + 'static>(
        &self,
        q: &mut SelectStatement,
        table: T,
        team: impl sea_orm::Iden + 'static,
        day: impl sea_orm::Iden + 'static,
        chatbot: impl sea_orm::Iden + 'static,
    ) {
        let (from, to) = self.days();
        q.from(table)
            .and_where(Expr::col((table, team)).eq(self.team_id.0))
            .and_where(Expr::col((table, day)).between(from, to));
        if let Some(rows) = &self.rows {
            q.and_where(Expr::col((table, chatbot)).is_in(rows.iter().copied()));
        }
    }

    fn days_of(&self) -> SelectStatement {
        use usage_day::Column as C;
        let mut q = Query::select();
        self.of(&mut q, usage_day::Entity, C::TeamId, C::Day, C::ChatbotId);
        q
    }

    fn per_day(&self) -> SelectStatement {
        let mut q = self.days_of();
        q.column(usage_day::Column::Day)
            .expr_as(sum("messages"), "messages")
            .expr_as(sum("sessions"), "sessions")
            .expr_as(sum("cost_e8"), "cost_e8")
            .group_by_col(usage_day::Column::Day);
        q
    }

    fn per_chatbot_row(&self) -> SelectStatement {
        let mut q = self.days_of();
        q.column(usage_day::Column::ChatbotId)
            .expr_as(sum("messages"), "messages")
            .expr_as(sum("cost_e8"), "cost_e8")
            .group_by_col(usage_day::Column::ChatbotId);
        q
    }

    /// Spend per model; the rows of messages and sessions (model `''`
    /// without tokens or cost) are not a model's.
    fn models(&self) -> SelectStatement {
        use usage_day::Column as C;
        let mut q = self.days_of();
        q.expr_as(Expr::col(C::Model), "model")
            .expr_as(sum("tokens"), "tokens")
            .expr_as(sum("cost_e8"), "cost_e8")
            .and_where(
                Expr::col(C::Model)
                    .ne("")
                    .or(Expr::col(C::Tokens).ne(0))
                    .or(Expr::col(C::CostE8).ne(0)),
            )
            .group_by_col(C::Model);
        q
    }

    /// Distinct active participants per day, or over the whole range.
    fn active(&self, per_day: bool) -> SelectStatement {
        use usage_active::Column as C;
        let mut q = Query::select();
        self.of(
            &mut q,
            usage_active::Entity,
            C::TeamId,
            C::Day,
            C::ChatbotId,
        );
        q.expr_as(Expr::cust("COUNT(DISTINCT participant_id)"), "n");
        if per_day {
            q.column(C::Day).group_by_col(C::Day);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn counts(messages: i64) -> Counts {
        Counts {
            messages,
            ..Counts::default()
        }
    }

    #[test]
    fn every_day_of_the_range_is_there_with_zeros_between() {
        let w = window(d("2024-02-27"), d("2024-03-02")).unwrap();
        let got = fill(
            &w,
            &BTreeMap::from([(d("2024-02-28"), counts(3)), (d("2024-03-02"), counts(1))]),
        );
        let dates: Vec<String> = got.iter().map(|x| x.date.to_string()).collect();
        assert_eq!(
            dates,
            [
                "2024-02-27",
                "2024-02-28",
                "2024-02-29",
                "2024-03-01",
                "2024-03-02"
            ]
        );
        let messages: Vec<i64> = got.iter().map(|x| x.counts.messages).collect();
        assert_eq!(messages, [0, 3, 0, 0, 1]);
    }

    #[test]
    fn counts_outside_the_range_are_dropped() {
        let w = window(d("2025-01-10"), d("2025-01-11")).unwrap();
        let got = fill(
            &w,
            &BTreeMap::from([
                (d("2025-01-09"), counts(7)),
                (d("2025-01-11"), counts(2)),
                (d("2025-01-12"), counts(9)),
            ]),
        );
        assert_eq!(
            got,
            [
                Day {
                    date: d("2025-01-10"),
                    counts: Counts::default()
                },
                Day {
                    date: d("2025-01-11"),
                    counts: counts(2)
                },
            ]
        );
    }

    #[test]
    fn one_day_is_one_point_and_a_half_open_utc_window() {
        let w = window(d("2025-06-30"), d("2025-06-30")).unwrap();
        assert_eq!(fill(&w, &BTreeMap::new()).len(), 1);
        assert_eq!(w.start.to_rfc3339(), "2025-06-30T00:00:00+00:00");
        assert_eq!(w.end.to_rfc3339(), "2025-07-01T00:00:00+00:00");
    }

    #[test]
    fn inverted_and_too_long_ranges_are_refused() {
        assert!(matches!(
            window(d("2025-01-02"), d("2025-01-01")),
            Err(Error::BadRequest(_))
        ));
        // A leap year is the longest range taken.
        let leap = window(d("2024-01-01"), d("2024-12-31")).unwrap();
        assert_eq!(fill(&leap, &BTreeMap::new()).len(), 366);
        assert!(matches!(
            window(d("2024-01-01"), d("2025-01-01")),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            window(NaiveDate::MAX, NaiveDate::MAX),
            Err(Error::BadRequest(_))
        ));
    }
}
