//! Usage per day for a team (the console's usage page), with the shared
//! activity definitions: messages are human and AI messages only, active
//! participants are those who wrote a human message, sessions still in
//! `setup` never count, and a day is the half-open UTC window
//! `[00:00, 24:00)`. Archived chatbots count like any other. Everything is
//! summed by the database; Rust only lays the grouped rows out per day.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryResult};
use store::entity::{chatbot, message, session, usage_record};
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
    let family = match chatbot {
        Some(id) => Some(family_of(domain, team_id, id).await?),
        None => None,
    };
    let f = Filter {
        team_id,
        window: w,
        family,
        day_sql: DaySql(db.get_database_backend()),
    };

    let mut per_day: BTreeMap<NaiveDate, Counts> = BTreeMap::new();
    let mut per_family: HashMap<Option<i64>, (i64, i64)> = HashMap::new();
    let mut totals = Counts::default();

    for row in db.query_all(&f.messages()).await? {
        let (day, fam, n) = (day_of(&row)?, row.try_get("", "family")?, n_of(&row)?);
        per_day.entry(day).or_default().messages += n;
        per_family.entry(fam).or_default().0 += n;
        totals.messages += n;
    }
    for row in db.query_all(&f.sessions()).await? {
        let n = n_of(&row)?;
        per_day.entry(day_of(&row)?).or_default().sessions += n;
        totals.sessions += n;
    }
    for row in db.query_all(&f.participants(true)).await? {
        per_day.entry(day_of(&row)?).or_default().participants += n_of(&row)?;
    }
    if let Some(row) = db.query_one(&f.participants(false)).await? {
        totals.participants = n_of(&row)?;
    }
    for row in db.query_all(&f.costs()).await? {
        let (day, fam, n) = (day_of(&row)?, row.try_get("", "family")?, n_of(&row)?);
        per_day.entry(day).or_default().cost_e8 += n;
        per_family.entry(fam).or_default().1 += n;
        totals.cost_e8 += n;
    }
    let mut models = Vec::new();
    for row in db.query_all(&f.models()).await? {
        models.push(ModelUsage {
            model: row.try_get("", "model")?,
            tokens: row.try_get("", "tokens")?,
            cost_e8: n_of(&row)?,
        });
    }
    models.sort_by(|a, b| b.tokens.cmp(&a.tokens).then_with(|| a.model.cmp(&b.model)));

    let chatbots = name_families(domain, per_family).await?;
    Ok(Usage {
        from: w.from,
        to: w.to,
        days: fill(&w, &per_day),
        totals,
        chatbots,
        models,
    })
}

/// The family row id of a team's chatbot or chatbot version (archived too:
/// their usage still happened).
async fn family_of(db: &impl Reads, team_id: TeamId, id: Uuid) -> Result<i64> {
    let row = chatbot::Entity::find()
        .filter(chatbot::Column::TeamId.eq(team_id))
        .filter(chatbot::Column::PublicId.eq(id))
        .one(db.reader())
        .await?
        .ok_or_else(|| Error::not_found(crate::chatbots::NOT_FOUND))?;
    Ok(row.working_version_id.unwrap_or(row.id))
}

async fn name_families(
    db: &impl Reads,
    per_family: HashMap<Option<i64>, (i64, i64)>,
) -> Result<Vec<ChatbotUsage>> {
    let ids: Vec<i64> = per_family.keys().flatten().copied().collect();
    let heads: HashMap<i64, (Uuid, String)> = if ids.is_empty() {
        HashMap::new()
    } else {
        chatbot::Entity::find()
            .filter(chatbot::Column::Id.is_in(ids))
            .all(db.reader())
            .await?
            .into_iter()
            .map(|c| (c.id, (c.public_id, c.name)))
            .collect()
    };
    let mut out: Vec<ChatbotUsage> = per_family
        .into_iter()
        .map(|(fam, (messages, cost_e8))| {
            let head = fam.and_then(|f| heads.get(&f));
            ChatbotUsage {
                id: head.map(|h| h.0),
                name: head.map_or_else(|| "No chatbot".to_string(), |h| h.1.clone()),
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
    Ok(out)
}

fn day_of(row: &QueryResult) -> Result<NaiveDate> {
    let text: String = row.try_get("", "day")?;
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|e| Error::internal_from(format!("a day the database gave: {text:?}"), e))
}

fn n_of(row: &QueryResult) -> Result<i64> {
    Ok(row.try_get::<Option<i64>>("", "n")?.unwrap_or(0))
}

/// The UTC day of a timestamp column, as `YYYY-MM-DD` text on both backends
/// (SQLite stores RFC 3339 text with an offset, which `date()` reads).
struct DaySql(DbBackend);

impl DaySql {
    fn of(&self, table: &str) -> Expr {
        match self.0 {
            DbBackend::Postgres => Expr::cust(format!(
                r#"CAST(CAST("{table}"."created_at" AT TIME ZONE 'UTC' AS DATE) AS TEXT)"#
            )),
            _ => Expr::cust(format!(r#"date("{table}"."created_at")"#)),
        }
    }
}

/// The family a `chatbots` row belongs to (itself for a working version).
fn family_expr() -> Expr {
    Expr::cust(r#"COALESCE("chatbots"."working_version_id", "chatbots"."id")"#)
}

// SUM of a BIGINT is NUMERIC on PostgreSQL: cast back for one decode path.
fn sum(column: &str) -> Expr {
    Expr::cust(format!("CAST(SUM({column}) AS BIGINT)"))
}

struct Filter {
    team_id: TeamId,
    window: Window,
    family: Option<i64>,
    day_sql: DaySql,
}

impl Filter {
    /// Sessions (out of setup) of the team and chatbot, with their chatbot row.
    fn sessions_of(&self, q: &mut SelectStatement) {
        q.inner_join(
            chatbot::Entity,
            Expr::col((chatbot::Entity, chatbot::Column::Id))
                .equals((session::Entity, session::Column::ChatbotId)),
        )
        .and_where(Expr::col((session::Entity, session::Column::TeamId)).eq(self.team_id.0))
        .and_where(Expr::col((session::Entity, session::Column::Status)).ne("setup"));
        if let Some(f) = self.family {
            q.and_where(family_expr().eq(f));
        }
    }

    /// The team's messages in the window, of `roles`, in counted sessions.
    fn messages_of(&self, roles: &[&str]) -> SelectStatement {
        let mut q = Query::select();
        q.from(message::Entity)
            .inner_join(
                session::Entity,
                Expr::col((session::Entity, session::Column::Id))
                    .equals((message::Entity, message::Column::SessionId)),
            )
            .and_where(Expr::col((message::Entity, message::Column::TeamId)).eq(self.team_id.0))
            .and_where(
                Expr::col((message::Entity, message::Column::Role))
                    .is_in(roles.iter().map(|r| (*r).to_string())),
            )
            .and_where(
                Expr::col((message::Entity, message::Column::CreatedAt)).gte(self.window.start),
            )
            .and_where(
                Expr::col((message::Entity, message::Column::CreatedAt)).lt(self.window.end),
            );
        self.sessions_of(&mut q);
        q
    }

    fn messages(&self) -> SelectStatement {
        let day = self.day_sql.of("messages");
        let mut q = self.messages_of(&["human", "ai"]);
        q.expr_as(day.clone(), "day")
            .expr_as(family_expr(), "family")
            .expr_as(Expr::cust("COUNT(*)"), "n")
            .add_group_by([day, family_expr()]);
        q
    }

    fn participants(&self, per_day: bool) -> SelectStatement {
        let mut q = self.messages_of(&["human"]);
        q.expr_as(
            Expr::cust(r#"COUNT(DISTINCT "sessions"."participant_id")"#),
            "n",
        );
        if per_day {
            let day = self.day_sql.of("messages");
            q.expr_as(day.clone(), "day").add_group_by([day]);
        }
        q
    }

    fn sessions(&self) -> SelectStatement {
        let day = self.day_sql.of("sessions");
        let mut q = Query::select();
        q.from(session::Entity)
            .expr_as(day.clone(), "day")
            .expr_as(Expr::cust("COUNT(*)"), "n")
            .and_where(
                Expr::col((session::Entity, session::Column::CreatedAt)).gte(self.window.start),
            )
            .and_where(Expr::col((session::Entity, session::Column::CreatedAt)).lt(self.window.end))
            .add_group_by([day]);
        self.sessions_of(&mut q);
        q
    }

    /// The team's usage records in the window; with a chatbot, only that
    /// family's (spend no chatbot made is then left out).
    fn records(&self) -> SelectStatement {
        let mut q = Query::select();
        q.from(usage_record::Entity)
            .left_join(
                chatbot::Entity,
                Expr::col((chatbot::Entity, chatbot::Column::Id))
                    .equals((usage_record::Entity, usage_record::Column::ChatbotId)),
            )
            .and_where(
                Expr::col((usage_record::Entity, usage_record::Column::TeamId)).eq(self.team_id.0),
            )
            .and_where(
                Expr::col((usage_record::Entity, usage_record::Column::CreatedAt))
                    .gte(self.window.start),
            )
            .and_where(
                Expr::col((usage_record::Entity, usage_record::Column::CreatedAt))
                    .lt(self.window.end),
            );
        if let Some(f) = self.family {
            q.and_where(family_expr().eq(f));
        }
        q
    }

    fn costs(&self) -> SelectStatement {
        let day = self.day_sql.of("usage_records");
        let mut q = self.records();
        q.expr_as(day.clone(), "day")
            .expr_as(family_expr(), "family")
            .expr_as(sum(r#""usage_records"."cost_e8""#), "n")
            .add_group_by([day, family_expr()]);
        q
    }

    fn models(&self) -> SelectStatement {
        let mut q = self.records();
        q.expr_as(
            Expr::col((usage_record::Entity, usage_record::Column::ModelName)),
            "model",
        )
        .expr_as(sum(r#""usage_records"."quantity""#), "tokens")
        .expr_as(sum(r#""usage_records"."cost_e8""#), "n")
        .group_by_col((usage_record::Entity, usage_record::Column::ModelName));
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
