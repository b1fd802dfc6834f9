//! Fixed-window rate limits for the chat API, per session, channel or client
//! IP, and a bucket per client IP for refused credentials (the original's
//! `credentials` scope). Counters live in this process (a deployment with
//! several instances gets a limit per instance); enforcement is on by
//! default with generous limits. Every counted response carries the
//! `X-RateLimit-*` headers.
//!
//! The table's memory is bounded whatever callers send: identities are
//! hashed (a keyed hash, so callers cannot aim at one bucket) to fixed-size
//! keys, entries of past windows are dropped, and past [`MAX_ENTRIES`] new
//! identities share one overflow bucket until the window turns.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The most identities counted at once (about 40 bytes each).
pub const MAX_ENTRIES: usize = 65_536;

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

/// The key every identity past [`MAX_ENTRIES`] counts under.
const OVERFLOW: u64 = 0;

struct Table {
    hasher: RandomState,
    /// Hashed identity → (window start, count).
    counters: HashMap<u64, (u64, u64)>,
}

#[derive(Clone)]
pub struct RateLimiter {
    rate: Rate,
    enforce: bool,
    table: Arc<Mutex<Table>>,
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
            table: Arc::new(Mutex::new(Table {
                hasher: RandomState::new(),
                counters: HashMap::new(),
            })),
        }
    }

    /// Counts one request of `identity` and decides on it.
    pub fn check(&self, identity: &str) -> Decision {
        self.count(identity, 1)
    }

    /// Decides on `identity` without counting (a bucket that only failures fill).
    pub fn peek(&self, identity: &str) -> Decision {
        self.count(identity, 0)
    }

    fn count(&self, identity: &str, add: u64) -> Decision {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let window = self.rate.window_secs;
        let start = now - now % window;
        let count = match self.table.lock() {
            Ok(mut t) => {
                let mut key = t.hasher.hash_one(identity).max(OVERFLOW + 1);
                let m = &mut t.counters;
                if !m.contains_key(&key) && m.len() >= MAX_ENTRIES {
                    // Old windows are worthless: drop them before growing.
                    m.retain(|_, (w, _)| *w == start);
                    if m.len() >= MAX_ENTRIES {
                        key = OVERFLOW;
                    }
                }
                let e = m.entry(key).or_insert((start, 0));
                if e.0 != start {
                    *e = (start, 0);
                }
                e.1 += add;
                e.1
            }
            Err(_) => 0,
        };
        let over = if add == 0 {
            count >= self.rate.limit
        } else {
            count > self.rate.limit
        };
        Decision {
            allowed: !self.enforce || !over,
            limit: self.rate.limit,
            remaining: self.rate.limit.saturating_sub(count),
            reset_secs: start + window - now,
        }
    }

    /// Counts `n` units (bytes, for an upload quota) against `identity`.
    pub fn add(&self, identity: &str, n: u64) -> Decision {
        self.count(identity, n)
    }

    /// How many identities are counted now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().map_or(0, |t| t.counters.len())
    }
}

/// Bytes uploaded per widget channel and per client over a window, so a
/// public embed key cannot fill the disk. A batch is let in while the
/// quota has room and counted when stored (so one batch, at most 50 MB, may
/// cross the line).
#[derive(Clone)]
pub struct UploadQuota {
    channel: RateLimiter,
    client: RateLimiter,
}

pub const MIB: u64 = 1024 * 1024;

impl UploadQuota {
    /// Quotas given in MiB per window.
    pub fn new(channel_mib: Rate, client_mib: Rate) -> Self {
        let bytes = |r: Rate| Rate {
            limit: r.limit.saturating_mul(MIB),
            window_secs: r.window_secs,
        };
        UploadQuota {
            channel: RateLimiter::new(bytes(channel_mib), true),
            client: RateLimiter::new(bytes(client_mib), true),
        }
    }

    /// The refusal when either quota is used up.
    pub fn exhausted(&self, channel: &str, client: &str) -> Option<Response> {
        [self.channel.peek(channel), self.client.peek(client)]
            .into_iter()
            .find(|d| !d.allowed)
            .map(|d| {
                let mut r = d.refusal();
                *r.body_mut() = axum::body::Body::from(
                    json!({"detail": "Upload quota exceeded.", "available_in": d.reset_secs})
                        .to_string(),
                );
                r
            })
    }

    pub fn spend(&self, channel: &str, client: &str, bytes: u64) {
        self.channel.add(channel, bytes);
        self.client.add(client, bytes);
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

    #[test]
    fn the_table_stays_bounded_whatever_identities_come() {
        let l = RateLimiter::new(
            Rate {
                limit: 3,
                window_secs: 3600,
            },
            true,
        );
        let huge = "x".repeat(200);
        for i in 0..(MAX_ENTRIES + 5_000) {
            l.check(&format!("session:{huge}{i}"));
        }
        assert_eq!(
            l.len(),
            MAX_ENTRIES + 1,
            "the rest share the overflow bucket"
        );
        // The overflow bucket is itself limited.
        assert!(!l.check("session:one-more").allowed);
        // A known identity keeps its own count.
        let known = format!("session:{huge}0");
        assert!(l.check(&known).allowed);
    }

    #[test]
    fn peeking_does_not_count() {
        let l = RateLimiter::new(
            Rate {
                limit: 2,
                window_secs: 3600,
            },
            true,
        );
        assert!(l.peek("credentials:1.2.3.4").allowed);
        l.check("credentials:1.2.3.4");
        assert!(l.peek("credentials:1.2.3.4").allowed);
        l.check("credentials:1.2.3.4");
        assert!(!l.peek("credentials:1.2.3.4").allowed);
    }
}
