//! Cursor pagination for list endpoints.
//!
//! Cursors are opaque, keyset-based and signed: a cursor names a position
//! `(created_at, id)` in one listing and one sort order, so paging is stable
//! under inserts and costs one index range scan whatever the depth. The HMAC
//! makes "a cursor we did not issue" precise: anything garbled, forged or taken
//! from another listing is rejected with `404 {"detail": "Invalid cursor"}`.
//!
//! Decision (spec §2.4 allows it): we do not reproduce DRF's offset-based
//! cursor bytes; clients only ever follow `next`/`previous`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order as SqlOrder, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use sha2::Sha256;

use crate::{Error, Result};

pub const DEFAULT_PAGE_SIZE: u64 = 100;
pub const MAX_PAGE_SIZE: u64 = 1500;
pub const INVALID_CURSOR: &str = "Invalid cursor";

#[derive(Clone)]
pub struct CursorSigner {
    key: Arc<Vec<u8>>,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

impl Order {
    fn reversed(self) -> Self {
        match self {
            Order::Asc => Order::Desc,
            Order::Desc => Order::Asc,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub created_at: DateTime<Utc>,
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub order: Order,
    pub direction: Direction,
    /// Whether the row at `position` itself belongs to the page (only for
    /// cursors minted from an empty page, which have no row of their own).
    pub inclusive: bool,
    pub position: Position,
}

type HmacSha256 = Hmac<Sha256>;
const MAC_LEN: usize = 16;

impl CursorSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: Arc::new(secret.to_vec()),
        }
    }

    fn mac(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .map_err(|e| Error::internal(format!("cursor key: {e}")))?;
        mac.update(payload);
        Ok(mac.finalize().into_bytes()[..MAC_LEN].to_vec())
    }

    /// `text` with a MAC: a token only this instance can have made.
    pub fn sign(&self, text: &str) -> Result<String> {
        let mac = self.mac(text.as_bytes())?;
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(text.as_bytes()),
            URL_SAFE_NO_PAD.encode(mac)
        ))
    }

    /// The text of a token [`Self::sign`] made, if it is one.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (p, m) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(p).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(m).ok()?;
        if mac.len() != MAC_LEN {
            return None;
        }
        let mut verifier = HmacSha256::new_from_slice(&self.key).ok()?;
        verifier.update(&payload);
        verifier.verify_truncated_left(&mac).ok()?;
        String::from_utf8(payload).ok()
    }

    pub fn encode(&self, kind: &str, c: &Cursor) -> Result<String> {
        let payload = format!(
            "{kind}|{}|{}|{}|{}|{}",
            if c.order == Order::Asc { 'a' } else { 'd' },
            if c.direction == Direction::Forward {
                'f'
            } else {
                'b'
            },
            u8::from(c.inclusive),
            c.position.created_at.timestamp_micros(),
            c.position.id
        );
        let mac = self.mac(payload.as_bytes())?;
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(mac)
        ))
    }

    pub fn decode(&self, kind: &str, token: &str) -> Result<Cursor> {
        let invalid = || Error::not_found(INVALID_CURSOR);
        let (p, m) = token.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| invalid())?;
        let mac = URL_SAFE_NO_PAD.decode(m).map_err(|_| invalid())?;
        let mut verifier = HmacSha256::new_from_slice(&self.key)
            .map_err(|e| Error::internal(format!("cursor key: {e}")))?;
        verifier.update(&payload);
        verifier
            .verify_truncated_left(&mac)
            .map_err(|_| invalid())?;
        if mac.len() != MAC_LEN {
            return Err(invalid());
        }
        let text = String::from_utf8(payload).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split('|').collect();
        let [k, o, d, inc, micros, id] = parts.as_slice() else {
            return Err(invalid());
        };
        if *k != kind {
            return Err(invalid());
        }
        let order = match *o {
            "a" => Order::Asc,
            "d" => Order::Desc,
            _ => return Err(invalid()),
        };
        let direction = match *d {
            "f" => Direction::Forward,
            "b" => Direction::Backward,
            _ => return Err(invalid()),
        };
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok(Cursor {
            order,
            direction,
            inclusive: *inc == "1",
            position: Position {
                created_at: DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?,
                id: id.parse().map_err(|_| invalid())?,
            },
        })
    }
}

/// The paging parameters as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// `None` when the query has no `cursor` parameter at all: only then is
    /// `count` computed. `Some("")` behaves like the first page without a count.
    pub cursor: Option<String>,
    pub page_size: Option<String>,
}

impl PageRequest {
    /// Only a request without a `cursor` parameter gets a `count`.
    pub fn wants_count(&self) -> bool {
        self.cursor.is_none()
    }

    /// Strictly positive integers are honoured (capped at 1500); anything else
    /// falls back to the default, as the original does.
    pub fn page_size(&self) -> u64 {
        match self
            .page_size
            .as_deref()
            .map(str::trim)
            .map(str::parse::<u64>)
        {
            Some(Ok(n)) if n > 0 => Ord::min(n, MAX_PAGE_SIZE),
            _ => DEFAULT_PAGE_SIZE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub count: Option<u64>,
    /// The count stopped at a bound: there are more than `count` (a listing
    /// that bounds what it counts for a filter; never the API's lists).
    pub count_capped: bool,
}

impl<T> Page<T> {
    /// A first page with nothing on it.
    pub fn empty() -> Self {
        Page {
            items: Vec::new(),
            next: None,
            previous: None,
            count: Some(0),
            count_capped: false,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
            previous: self.previous,
            count: self.count,
            count_capped: self.count_capped,
        }
    }

    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, E>>()?,
            next: self.next,
            previous: self.previous,
            count: self.count,
            count_capped: self.count_capped,
        })
    }
}

/// One listing to page through: its cursor kind, sort order and key columns.
pub struct Listing<'a, E: EntityTrait> {
    pub kind: &'a str,
    pub order: Order,
    pub created_at: E::Column,
    pub id: E::Column,
}

/// Runs one page of `select` (already filtered and team-scoped): at most two
/// queries, the count (first page only) and the keyset page itself.
pub async fn paginate<E, C>(
    db: &C,
    signer: &CursorSigner,
    listing: &Listing<'_, E>,
    select: Select<E>,
    req: &PageRequest,
    key: impl Fn(&E::Model) -> Position,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    let count = if req.wants_count() {
        Some(select.clone().count(db).await?)
    } else {
        None
    };
    let mut page = rows(db, signer, listing, select, req, key).await?;
    page.count = count;
    Ok(page)
}

/// The keyset page of `select` alone, without a count (for listings that
/// count their own way): one query.
pub async fn rows<E, C>(
    db: &C,
    signer: &CursorSigner,
    listing: &Listing<'_, E>,
    select: Select<E>,
    req: &PageRequest,
    key: impl Fn(&E::Model) -> Position,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    let size = req.page_size();
    let cursor = match req.cursor.as_deref() {
        None | Some("") => None,
        Some(token) => {
            let c = signer.decode(listing.kind, token)?;
            if c.order != listing.order {
                return Err(Error::not_found(INVALID_CURSOR));
            }
            Some(c)
        }
    };
    let direction = cursor.as_ref().map_or(Direction::Forward, |c| c.direction);
    let scan = match direction {
        Direction::Forward => listing.order,
        Direction::Backward => listing.order.reversed(),
    };
    let mut q = select;
    if let Some(c) = &cursor {
        let p = c.position;
        let (created, id) = (listing.created_at, listing.id);
        let tie = match (scan, c.inclusive) {
            (Order::Asc, false) => Expr::col(id).gt(p.id),
            (Order::Asc, true) => Expr::col(id).gte(p.id),
            (Order::Desc, false) => Expr::col(id).lt(p.id),
            (Order::Desc, true) => Expr::col(id).lte(p.id),
        };
        let beyond = match scan {
            Order::Asc => created.gt(p.created_at),
            Order::Desc => created.lt(p.created_at),
        };
        q = q.filter(beyond.or(created.eq(p.created_at).and(tie)));
    }
    let sql_order = match scan {
        Order::Asc => SqlOrder::Asc,
        Order::Desc => SqlOrder::Desc,
    };
    let mut rows = q
        .order_by(listing.created_at, sql_order.clone())
        .order_by(listing.id, sql_order)
        .limit(size + 1)
        .all(db)
        .await?;
    let extra = rows.len() as u64 > size;
    rows.truncate(size as usize);
    if direction == Direction::Backward {
        rows.reverse();
    }
    let (has_next, has_prev) = match direction {
        Direction::Forward => (extra, cursor.is_some()),
        Direction::Backward => (true, extra),
    };
    let mint = |direction, inclusive, position| {
        signer.encode(
            listing.kind,
            &Cursor {
                order: listing.order,
                direction,
                inclusive,
                position,
            },
        )
    };
    let next = match (has_next, rows.last(), &cursor) {
        (false, _, _) => None,
        (true, Some(last), _) => Some(mint(Direction::Forward, false, key(last))?),
        (true, None, Some(c)) => Some(mint(Direction::Forward, !c.inclusive, c.position)?),
        (true, None, None) => None,
    };
    let previous = match (has_prev, rows.first(), &cursor) {
        (false, _, _) => None,
        (true, Some(first), _) => Some(mint(Direction::Backward, false, key(first))?),
        (true, None, Some(c)) => Some(mint(Direction::Backward, !c.inclusive, c.position)?),
        (true, None, None) => None,
    };
    Ok(Page {
        items: rows,
        next,
        previous,
        count: None,
        count_capped: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            order: Order::Desc,
            direction: Direction::Forward,
            inclusive: false,
            position: Position {
                created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
                id: 42,
            },
        }
    }

    #[test]
    fn round_trips() {
        let s = CursorSigner::new(b"k");
        let t = s.encode("experiments", &cursor()).unwrap();
        assert_eq!(s.decode("experiments", &t).unwrap(), cursor());
    }

    #[test]
    fn rejects_other_kinds_keys_and_garbage() {
        let s = CursorSigner::new(b"k");
        let t = s.encode("experiments", &cursor()).unwrap();
        assert!(s.decode("sessions", &t).is_err());
        assert!(
            CursorSigner::new(b"other")
                .decode("experiments", &t)
                .is_err()
        );
        for bad in ["", ".", "abc", "cD0yMDIx", "bz0yJnI9MQ==", "a.b", &t[1..]] {
            assert!(
                matches!(s.decode("experiments", bad), Err(Error::NotFound(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn page_size_rules() {
        let r = |v: &str| {
            PageRequest {
                cursor: None,
                page_size: Some(v.into()),
            }
            .page_size()
        };
        assert_eq!(r("7"), 7);
        assert_eq!(r("0"), 100);
        assert_eq!(r("-3"), 100);
        assert_eq!(r("x"), 100);
        assert_eq!(r("99999"), 1500);
        assert_eq!(PageRequest::default().page_size(), 100);
    }
}
