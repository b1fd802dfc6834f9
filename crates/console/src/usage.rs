//! The usage page: a team's messages, sessions, active participants and
//! cost per day over a range of days (the last 30 by default), of one
//! chatbot or all, each drawn and listed; spend per chatbot and per model.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{Days, NaiveDate, Utc};
use domain::teams::Permission;
use domain::usage::{self, Counts, Usage};
use minijinja::{Value, context};
use serde::Deserialize;
use uuid::Uuid;

use api::AppState;

use crate::chart;
use crate::error::PageError;
use crate::member::Member;
use crate::render;
use crate::sessions::money;

/// Days shown when the query names no start.
const DEFAULT_DAYS: u64 = 30;

#[derive(Debug, Deserialize, Default)]
pub struct UsageQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    chatbot: String,
}

fn date(field: &str, text: &str) -> Result<Option<NaiveDate>, PageError> {
    match text.trim() {
        "" => Ok(None),
        t => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                PageError::BadRequest(format!("{field}: {t:?} is not a date (YYYY-MM-DD)."))
            }),
    }
}

/// The range asked for: up to today (UTC), 30 days long, unless said.
fn range(q: &UsageQuery, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), PageError> {
    let to = date("to", &q.to)?.unwrap_or(today);
    let from = match date("from", &q.from)? {
        Some(d) => d,
        None => to
            .checked_sub_days(Days::new(DEFAULT_DAYS - 1))
            .ok_or_else(|| PageError::BadRequest(format!("to: {to} is out of range.")))?,
    };
    Ok((from, to))
}

fn chatbot_of(text: &str) -> Result<Option<Uuid>, PageError> {
    match text.trim() {
        "" => Ok(None),
        id => Uuid::parse_str(id)
            .map(Some)
            .map_err(|_| PageError::BadRequest(format!("{id:?} is not a chatbot id."))),
    }
}

fn count(n: i64) -> String {
    n.to_string()
}

/// One metric's chart and the numbers beside it.
fn metric(
    u: &Usage,
    title: &str,
    column: &str,
    value: fn(&Counts) -> i64,
    format: fn(i64) -> String,
) -> Value {
    let points: Vec<(String, i64)> = u
        .days
        .iter()
        .map(|d| (d.date.to_string(), value(&d.counts)))
        .collect();
    context! {
        title => title,
        column => column,
        svg => Value::from_safe_string(chart::bars(title, &points, format)),
        total => format(value(&u.totals)),
        rows => points.iter().map(|(day, v)| context! { day => day, value => format(*v) }).collect::<Vec<_>>(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    m: Member,
    Query(q): Query<UsageQuery>,
) -> Result<Response, PageError> {
    m.require(Permission::Read)?;
    let (from, to) = range(&q, Utc::now().date_naive())?;
    let chatbot = chatbot_of(&q.chatbot)?;
    let u = usage::daily(&state.domain, m.team.id, from, to, chatbot).await?;
    let bots = domain::chatbots::list_all(&state.domain, m.team.id).await?;
    let chatbot_id = chatbot.map(|c| c.to_string()).unwrap_or_default();
    render::page(
        "usage.html",
        context! {
            ..m.frame("usage"),
            ..context! {
                filter => context! { from => u.from.to_string(), to => u.to.to_string(), chatbot => chatbot_id },
                chatbots => bots.iter().map(|b| context! { id => b.id.to_string(), name => b.name }).collect::<Vec<_>>(),
                metrics => [
                    metric(&u, "Messages per day", "Messages", |c| c.messages, count),
                    metric(&u, "Sessions started per day", "Sessions", |c| c.sessions, count),
                    metric(&u, "Active participants per day", "Participants", |c| c.participants, count),
                    metric(&u, "Cost per day", "Cost", |c| c.cost_e8, money),
                ],
                by_chatbot => u.chatbots.iter().map(|c| context! {
                    id => c.id.map(|i| i.to_string()),
                    name => c.name,
                    messages => c.messages,
                    cost => money(c.cost_e8),
                }).collect::<Vec<_>>(),
                by_model => u.models.iter().map(|x| context! {
                    model => x.model,
                    tokens => x.tokens,
                    cost => money(x.cost_e8),
                }).collect::<Vec<_>>(),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: &str, to: &str) -> UsageQuery {
        UsageQuery {
            from: from.into(),
            to: to.into(),
            chatbot: String::new(),
        }
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_range_defaults_to_thirty_days_up_to_today() {
        let today = d("2025-03-10");
        assert_eq!(range(&q("", ""), today).unwrap(), (d("2025-02-09"), today));
        assert_eq!(
            range(&q("", "2025-01-31"), today).unwrap(),
            (d("2025-01-02"), d("2025-01-31"))
        );
        assert_eq!(
            range(&q(" 2025-03-01 ", ""), today).unwrap(),
            (d("2025-03-01"), today)
        );
    }

    #[test]
    fn dates_and_ids_that_do_not_parse_are_bad_requests() {
        let today = d("2025-03-10");
        for (from, to) in [("2025-02-30", ""), ("", "10/03/2025"), ("yesterday", "")] {
            assert!(matches!(
                range(&q(from, to), today),
                Err(PageError::BadRequest(_))
            ));
        }
        assert!(matches!(chatbot_of("nope"), Err(PageError::BadRequest(_))));
        assert_eq!(chatbot_of(" ").unwrap(), None);
    }
}
