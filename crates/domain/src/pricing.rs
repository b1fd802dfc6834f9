//! Prices and cost arithmetic. Money is an integer count of 1e-8 currency
//! units (`e8`), so sums are exact and print as decimals with 8 places.
//!
//! The price table shipped with the binary is dated (a price applies from its
//! `from` date until a later entry for the same model replaces it); a team's
//! `pricing_rules` rows override it. Prices are quoted per 1M tokens, as
//! providers publish them, and applied per 1K tokens, as the original stores them.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionSession, TransactionTrait,
};
use store::entity::pricing_rule;

use crate::conn::{Reads, Writes};
use crate::ids::TeamId;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    Input,
    Output,
    CachedInput,
    CacheWrite,
}

impl ServiceKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s.strip_prefix("llm_").unwrap_or(s) {
            "input" => Some(ServiceKind::Input),
            "output" => Some(ServiceKind::Output),
            "cached_input" => Some(ServiceKind::CachedInput),
            "cache_write" => Some(ServiceKind::CacheWrite),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Input => "llm_input",
            ServiceKind::Output => "llm_output",
            ServiceKind::CachedInput => "llm_cached_input",
            ServiceKind::CacheWrite => "llm_cache_write",
        }
    }
}

/// One dated row of the shipped table: USD per 1M tokens.
struct Entry {
    provider: &'static str,
    model: &'static str,
    from: &'static str,
    input: &'static str,
    output: &'static str,
    cached_input: &'static str,
    cache_write: &'static str,
}

const fn e(
    provider: &'static str,
    model: &'static str,
    from: &'static str,
    input: &'static str,
    output: &'static str,
    cached_input: &'static str,
    cache_write: &'static str,
) -> Entry {
    Entry {
        provider,
        model,
        from,
        input,
        output,
        cached_input,
        cache_write,
    }
}

/// Public list prices (USD per 1M tokens) as published by the providers.
const TABLE: &[Entry] = &[
    e(
        "openai",
        "gpt-4o",
        "2024-10-01",
        "2.50",
        "10.00",
        "1.25",
        "0",
    ),
    e(
        "openai",
        "gpt-4o-mini",
        "2024-07-18",
        "0.15",
        "0.60",
        "0.075",
        "0",
    ),
    e(
        "openai",
        "gpt-4.1",
        "2025-04-14",
        "2.00",
        "8.00",
        "0.50",
        "0",
    ),
    e(
        "openai",
        "gpt-4.1-mini",
        "2025-04-14",
        "0.40",
        "1.60",
        "0.10",
        "0",
    ),
    e(
        "openai",
        "gpt-4.1-nano",
        "2025-04-14",
        "0.10",
        "0.40",
        "0.025",
        "0",
    ),
    e(
        "openai",
        "gpt-5",
        "2025-08-07",
        "1.25",
        "10.00",
        "0.125",
        "0",
    ),
    e(
        "openai",
        "gpt-5-mini",
        "2025-08-07",
        "0.25",
        "2.00",
        "0.025",
        "0",
    ),
    e(
        "openai",
        "gpt-5-nano",
        "2025-08-07",
        "0.05",
        "0.40",
        "0.005",
        "0",
    ),
    e("openai", "o3", "2025-06-10", "2.00", "8.00", "0.50", "0"),
    e(
        "openai",
        "o4-mini",
        "2025-04-16",
        "1.10",
        "4.40",
        "0.275",
        "0",
    ),
    e(
        "anthropic",
        "claude-opus-4-1",
        "2025-08-05",
        "15.00",
        "75.00",
        "1.50",
        "18.75",
    ),
    e(
        "anthropic",
        "claude-sonnet-4",
        "2025-05-22",
        "3.00",
        "15.00",
        "0.30",
        "3.75",
    ),
    e(
        "anthropic",
        "claude-sonnet-4-5",
        "2025-09-29",
        "3.00",
        "15.00",
        "0.30",
        "3.75",
    ),
    e(
        "anthropic",
        "claude-haiku-4-5",
        "2025-10-15",
        "1.00",
        "5.00",
        "0.10",
        "1.25",
    ),
    e(
        "anthropic",
        "claude-3-5-haiku",
        "2024-10-22",
        "0.80",
        "4.00",
        "0.08",
        "1.00",
    ),
    e(
        "gemini",
        "gemini-2.5-pro",
        "2025-06-17",
        "1.25",
        "10.00",
        "0.31",
        "0",
    ),
    e(
        "gemini",
        "gemini-2.5-flash",
        "2025-06-17",
        "0.30",
        "2.50",
        "0.075",
        "0",
    ),
    e(
        "gemini",
        "gemini-2.5-flash-lite",
        "2025-07-22",
        "0.10",
        "0.40",
        "0.025",
        "0",
    ),
    e(
        "gemini",
        "gemini-2.0-flash",
        "2025-02-05",
        "0.10",
        "0.40",
        "0.025",
        "0",
    ),
];

/// Parses a decimal string ("2.50") into e8 units.
pub fn parse_e8(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 8 {
        return None;
    }
    if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i64 = format!("{frac:0<8}").parse().ok()?;
    let v = int.checked_mul(100_000_000)?.checked_add(frac)?;
    Some(if neg { -v } else { v })
}

/// Formats e8 units as a decimal with exactly 8 places ("3.50000000").
pub fn format_e8(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:08}", a / 100_000_000, a % 100_000_000)
}

/// Cost of `quantity` tokens at `unit_e8` per 1K tokens, rounded half up.
pub fn cost_e8(quantity: i64, unit_e8_per_1k: i64) -> i64 {
    let p = i128::from(quantity) * i128::from(unit_e8_per_1k);
    let q = (p + 500) / 1000;
    i64::try_from(q).unwrap_or(i64::MAX)
}

/// Per-1M USD price string → e8 per 1K tokens.
fn per_1k(per_1m: &str) -> Option<i64> {
    parse_e8(per_1m).map(|v| v / 1000)
}

fn table_model_matches(table: &str, reported: &str) -> bool {
    reported == table
        || reported.strip_prefix(table).is_some_and(|rest| {
            rest.starts_with('-') && rest[1..].starts_with(|c: char| c.is_ascii_digit())
        })
}

/// The shipped price for (provider, model, kind) at `at`, in e8 per 1K tokens.
/// Dated suffixes (`gpt-4o-2024-08-06`) match their base model.
pub fn shipped_price(
    provider: &str,
    model: &str,
    kind: ServiceKind,
    at: DateTime<Utc>,
) -> Option<i64> {
    if provider == "builtin" {
        return Some(0);
    }
    let day = at.date_naive();
    let best = TABLE
        .iter()
        .filter(|e| e.provider == provider && table_model_matches(e.model, model))
        .filter(|e| NaiveDate::parse_from_str(e.from, "%Y-%m-%d").is_ok_and(|d| d <= day))
        // The most specific model name, then the most recent price.
        .max_by_key(|e| (e.model.len(), e.from))?;
    per_1k(match kind {
        ServiceKind::Input => best.input,
        ServiceKind::Output => best.output,
        ServiceKind::CachedInput => best.cached_input,
        ServiceKind::CacheWrite => best.cache_write,
    })
}

/// The prices in force for one (provider, model) for a team, every kind in
/// one query: its own rules where they apply, else the shipped table.
pub async fn prices(
    db: &impl Reads,
    team_id: TeamId,
    provider: &str,
    model: &str,
    at: DateTime<Utc>,
) -> Result<Prices> {
    let rules = rules(db, team_id, provider, model).await?;
    Ok(prices_in(&rules, provider, model, at))
}

/// Every rule a team has for one (provider, model), whatever its dates,
/// newest first: what [`prices_in`] picks from (the turn caches them).
pub async fn rules(
    db: &impl Reads,
    team_id: TeamId,
    provider: &str,
    model: &str,
) -> Result<Vec<pricing_rule::Model>> {
    Ok(pricing_rule::Entity::find()
        .filter(pricing_rule::Column::TeamId.eq(team_id))
        .filter(pricing_rule::Column::ProviderKind.eq(provider))
        .filter(pricing_rule::Column::ModelName.eq(model))
        .order_by_desc(pricing_rule::Column::EffectiveFrom)
        .all(db.reader())
        .await?)
}

/// The prices in force at `at` among a (provider, model)'s `rules` (newest
/// first): the team's own rule per kind where one applies, else the shipped table.
pub fn prices_in(
    rules: &[pricing_rule::Model],
    provider: &str,
    model: &str,
    at: DateTime<Utc>,
) -> Prices {
    let kinds = [
        ServiceKind::Input,
        ServiceKind::Output,
        ServiceKind::CachedInput,
        ServiceKind::CacheWrite,
    ];
    Prices(kinds.map(|k| {
        let own = rules
            .iter()
            .filter(|r| r.effective_from <= at && r.effective_to.is_none_or(|to| to > at))
            .find(|r| r.service_kind == k.as_str())
            .map(|r| r.unit_price_e8);
        (k, own.or_else(|| shipped_price(provider, model, k, at)))
    }))
}

/// Per-1K prices (e8) of one model by kind; `None` = unpriced.
#[derive(Debug, Clone, Copy)]
pub struct Prices([(ServiceKind, Option<i64>); 4]);

impl Prices {
    pub fn get(&self, kind: ServiceKind) -> Option<i64> {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, p)| *p)
    }
}

/// A team's own price, in force from `from` until replaced; the rule it
/// replaces ends where this one starts. One transaction.
pub async fn set_override<C: ConnectionTrait + TransactionTrait + Reads + Writes>(
    db: &C,
    team_id: TeamId,
    provider: &str,
    model: &str,
    kind: ServiceKind,
    usd_per_1m: &str,
    from: DateTime<Utc>,
) -> Result<i64> {
    let per_1m = parse_e8(usd_per_1m).filter(|v| *v >= 0).ok_or_else(|| {
        Error::BadRequest(format!(
            "invalid price {usd_per_1m:?}: use a decimal like 2.50"
        ))
    })?;
    if per_1m % 1000 != 0 {
        return Err(Error::BadRequest(
            "prices per 1M tokens can have at most 5 decimal places".into(),
        ));
    }
    let txn = db.begin().await?;
    pricing_rule::Entity::update_many()
        .col_expr(pricing_rule::Column::EffectiveTo, Expr::value(from))
        .filter(pricing_rule::Column::TeamId.eq(team_id))
        .filter(pricing_rule::Column::ProviderKind.eq(provider))
        .filter(pricing_rule::Column::ModelName.eq(model))
        .filter(pricing_rule::Column::ServiceKind.eq(kind.as_str()))
        .filter(pricing_rule::Column::EffectiveTo.is_null())
        .exec(&txn)
        .await?;
    pricing_rule::ActiveModel {
        team_id: Set(team_id.0),
        provider_kind: Set(provider.to_string()),
        model_name: Set(model.to_string()),
        service_kind: Set(kind.as_str().to_string()),
        unit_price_e8: Set(per_1m / 1000),
        currency: Set("USD".into()),
        effective_from: Set(from),
        effective_to: Set(None),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(per_1m / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trip() {
        assert_eq!(parse_e8("3.5"), Some(350_000_000));
        assert_eq!(parse_e8("0.00000001"), Some(1));
        assert_eq!(parse_e8("0.000000001"), None);
        assert_eq!(parse_e8("abc"), None);
        assert_eq!(format_e8(350_000_000), "3.50000000");
        assert_eq!(format_e8(0), "0.00000000");
        assert_eq!(format_e8(-1), "-0.00000001");
    }

    #[test]
    fn costs() {
        let at = Utc::now();
        let gpt4o_in = shipped_price("openai", "gpt-4o", ServiceKind::Input, at).unwrap();
        assert_eq!(format_e8(gpt4o_in), "0.00250000"); // per 1K
        assert_eq!(format_e8(cost_e8(1000, gpt4o_in)), "0.00250000");
        assert_eq!(format_e8(cost_e8(100, gpt4o_in)), "0.00025000");
        // Dated snapshot names match their base model, but not a longer family name.
        assert_eq!(
            shipped_price("openai", "gpt-4o-2024-08-06", ServiceKind::Input, at),
            Some(gpt4o_in)
        );
        let mini = shipped_price("openai", "gpt-4o-mini", ServiceKind::Input, at).unwrap();
        assert_ne!(mini, gpt4o_in);
        assert_eq!(
            shipped_price("openai", "unknown-model", ServiceKind::Input, at),
            None
        );
        assert_eq!(
            shipped_price("builtin", "echo", ServiceKind::Output, at),
            Some(0)
        );
        // Rounding half up at the 8th place.
        assert_eq!(cost_e8(1, 7500), 8);
        assert_eq!(cost_e8(1, 7499), 7);
    }

    #[test]
    fn prices_before_their_date_do_not_apply() {
        let early = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            shipped_price("openai", "gpt-5", ServiceKind::Input, early),
            None
        );
    }
}

/// A team price in force, as the team page lists it.
#[derive(Debug, Clone)]
pub struct Override {
    pub provider_kind: String,
    pub model: String,
    pub kind: String,
    /// USD per 1M tokens, 8 places.
    pub usd_per_1m: String,
    pub since: DateTime<Utc>,
}

/// The team's own prices in force, by provider, model and kind.
pub async fn overrides(db: &impl Reads, team_id: TeamId) -> Result<Vec<Override>> {
    use sea_orm::QueryOrder;
    Ok(pricing_rule::Entity::find()
        .filter(pricing_rule::Column::TeamId.eq(team_id))
        .filter(pricing_rule::Column::EffectiveTo.is_null())
        .order_by_asc(pricing_rule::Column::ProviderKind)
        .order_by_asc(pricing_rule::Column::ModelName)
        .order_by_asc(pricing_rule::Column::ServiceKind)
        .all(db.reader())
        .await?
        .into_iter()
        .map(|r| Override {
            usd_per_1m: format_e8(r.unit_price_e8.saturating_mul(1000)),
            provider_kind: r.provider_kind,
            model: r.model_name,
            kind: r.service_kind,
            since: r.effective_from,
        })
        .collect())
}
