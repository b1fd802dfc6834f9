//! Fixed-window rate limits for the chat API, per session, channel or client
//! IP. Counters live in this process (a deployment with several instances
//! gets a limit per instance); enforcement is on by default with generous
//! limits. Every counted response carries the `X-RateLimit-*` headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub limit: u64,
    pub window_secs: u64,
}

impl Rate {
    /// `<count>/<n><unit>`, unit `s`, `m` or `h` (`300/5m`).
    pub fn parse(s: &str) -> Option<Rate> {
        let (count, per) = s.trim().split_once('/')?;
        let limit = count.trim().parse().ok()?;
        let per = per.trim();
        let unit = per.chars().last()?;
        let n: u64 = match &per[..per.len() - 1] {
            "" => 1,
            digits => digits.parse().ok()?,
        };
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        Some(Rate {
            limit,
            window_secs: n.checked_mul(secs)?.max(1),
        })
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    rate: Rate,
    enforce: bool,
    counters: Arc<Mutex<HashMap<String, (u64, u64)>>>,
}

pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_secs: u64,
}

impl RateLimiter {
    pub fn new(rate: Rate, enforce: bool) -> Self {
        Self {
            rate,
            enforce,
            counters: Default::default(),
        }
    }

    pub fn check(&self, identity: &str) -> Decision {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let window = self.rate.window_secs;
        let start = now - now % window;
        let count = match self.counters.lock() {
            Ok(mut m) => {
                if m.len() > 100_000 {
                    // Old windows are worthless: drop them rather than grow without bound.
                    m.retain(|_, (w, _)| *w == start);
                }
                let e = m.entry(identity.to_string()).or_insert((start, 0));
                if e.0 != start {
                    *e = (start, 0);
                }
                e.1 += 1;
                e.1
            }
            Err(_) => 0,
        };
        Decision {
            allowed: !self.enforce || count <= self.rate.limit,
            limit: self.rate.limit,
            remaining: self.rate.limit.saturating_sub(count),
            reset_secs: start + window - now,
        }
    }
}

impl Decision {
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset_secs));
    }

    pub fn refusal(&self) -> Response {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"detail": "Rate limit exceeded.", "available_in": self.reset_secs})),
        )
            .into_response();
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(self.reset_secs));
        self.apply(r.headers_mut());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        let r = Rate::parse("300/5m").unwrap();
        assert_eq!((r.limit, r.window_secs), (300, 300));
        let r = Rate::parse("10/s").unwrap();
        assert_eq!((r.limit, r.window_secs), (10, 1));
        assert!(Rate::parse("x/5m").is_none());
        assert!(Rate::parse("3/5d").is_none());
    }

    #[test]
    fn counts_per_identity() {
        let l = RateLimiter::new(
            Rate {
                limit: 2,
                window_secs: 3600,
            },
            true,
        );
        assert!(l.check("a").allowed);
        assert!(l.check("a").allowed);
        let d = l.check("a");
        assert!(!d.allowed && d.remaining == 0);
        assert!(l.check("b").allowed);
        let lax = RateLimiter::new(
            Rate {
                limit: 1,
                window_secs: 3600,
            },
            false,
        );
        lax.check("a");
        assert!(lax.check("a").allowed, "count-only mode never refuses");
    }
}
