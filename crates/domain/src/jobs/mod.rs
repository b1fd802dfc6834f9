//! Durable work: the queue (`queue`) and the kinds of job that travel through
//! it (`kinds`), each a typed payload and a typed output. Enqueuing takes a
//! payload value and reading a task's state yields the kind's output type, so
//! no job crosses a crate boundary as loose JSON.

pub mod kinds;
pub mod queue;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use kinds::*;
pub use queue::*;

/// One kind of job. Handlers are registered for kinds in the engine; the
/// domain enqueues them inside the transactions that make them necessary.
pub trait JobKind: Send + Sync + 'static {
    /// The stored `kind`, unique across kinds.
    const KIND: &'static str;
    /// An earlier name of the kind, still run as it (jobs queued before a rename).
    const FORMERLY: Option<&'static str> = None;
    /// Attempts before the job is buried (`dead`).
    const MAX_ATTEMPTS: i32 = 5;
    type Payload: Serialize + DeserializeOwned + Send + Sync + 'static;
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;
}
