//! What a domain service runs its queries on. Services take `&Domain` (reads
//! go to the reader pool, writes to the writer) or a `&Tx` (both go to the
//! transaction), so callers never pick a raw connection themselves. A bare
//! connection or transaction is accepted too, for the CLI and for tests.

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
