//! What a domain service runs its queries on. Services take `&Domain` (reads
//! go to the reader pool, writes to the writer) or a `&Tx` (both go to the
//! transaction), so callers never pick a raw connection themselves. A bare
//! connection or transaction is accepted too, for the CLI and for tests.

use sea_orm::sea_query::{Expr, IntoIden, IntoTableRef, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};

use crate::{Domain, Tx};

/// Something to read from.
pub trait Reads: Sync {
    type C: ConnectionTrait + Reads + Writes + Sync;
    fn reader(&self) -> &Self::C;
}

/// Something to write to (and read one's own writes from).
pub trait Writes: Sync {
    type C: ConnectionTrait + Reads + Writes + Sync;
    fn writer(&self) -> &Self::C;
}

impl Reads for Domain {
    type C = DatabaseConnection;
    fn reader(&self) -> &DatabaseConnection {
        &self.db.read
    }
}

impl Writes for Domain {
    type C = DatabaseConnection;
    fn writer(&self) -> &DatabaseConnection {
        &self.db.write
    }
}

impl Reads for Tx<'_> {
    type C = DatabaseTransaction;
    fn reader(&self) -> &DatabaseTransaction {
        self
    }
}

impl Writes for Tx<'_> {
    type C = DatabaseTransaction;
    fn writer(&self) -> &DatabaseTransaction {
        self
    }
}

macro_rules! raw {
    ($t:ty) => {
        impl Reads for $t {
            type C = $t;
            fn reader(&self) -> &$t {
                self
            }
        }
        impl Writes for $t {
            type C = $t;
            fn writer(&self) -> &$t {
                self
            }
        }
    };
}

raw!(DatabaseConnection);
raw!(DatabaseTransaction);

/// Inserts `row` into `table` unless a row with the same `key` columns is
/// there: whether it inserted. ON CONFLICT, not a caught violation: on
/// PostgreSQL a failed statement aborts the transaction it is in.
pub(crate) async fn insert_new<C: ConnectionTrait, K: IntoIden>(
    db: &C,
    table: impl IntoTableRef,
    row: impl IntoIterator<Item = (K, Expr)>,
    key: impl IntoIterator<Item = K>,
) -> crate::Result<bool> {
    let (columns, values): (Vec<K>, Vec<Expr>) = row.into_iter().unzip();
    let stmt = Query::insert()
        .into_table(table)
        .columns(columns)
        .values_panic(values)
        .on_conflict(OnConflict::columns(key).do_nothing().to_owned())
        .to_owned();
    Ok(db.execute(&stmt).await?.rows_affected() == 1)
}
