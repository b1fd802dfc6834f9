//! The Python sandbox of code nodes.
//!
//! User code runs in [monty](https://github.com/pydantic/monty) (0.0.23, the
//! newest release that builds on Rust 1.95): a Python interpreter written in
//! Rust with no file system, network or environment of its own, a bytecode
//! budget by execution time, a recursion limit, and heap accounting. It is
//! embedded in the `chatstudio` binary and runs in worker processes of that
//! binary (`chatstudio sandbox-worker`), one run at a time each, because
//! heap accounting is per process and because an interpreter bug that
//! aborts must take down a worker, not the server. The server kills a
//! worker at the wall-clock limit and replaces workers that die.
//!
//! - [`source`]: checks made on save, and the program a worker runs.
//! - [`worker`]: the worker process.
//! - [`pool`]: the server's pool of workers and the run loop.
//! - [`alloc`]: the binary's global allocator (accounting armed only in workers).

pub mod alloc;
pub mod errors;
pub mod pool;
pub mod protocol;
pub mod source;
pub mod value;
pub mod worker;

pub use alloc::Accounting;
pub use monty_types::{ExcType, MontyException, MontyObject};
pub use pool::{Call, Host, Limits, Outcome, Pool, RunError, WorkerCommand};
pub use protocol::Reply;
pub use source::{CodeError, check};
