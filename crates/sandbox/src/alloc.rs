//! The global allocator of the `chatstudio` binary: the system allocator,
//! plus heap accounting that only a sandbox worker process arms.
//!
//! The interpreter enforces its memory budget by reading
//! `monty_types::LIVE_MEMORY` (bytes live on the heap) against
//! `BASELINE_MEMORY` at its checkpoints and raising `MemoryError`. Counting
//! is process-wide, which is why code runs in worker processes of its own
//! (one run at a time each) and not on the server's threads. In the server
//! the allocator costs one relaxed load of a flag that is never written.
//! Past a hard ceiling (the budget plus headroom for work between
//! checkpoints) the worker exits with `OOM_EXIT_CODE` and the server reports
//! the memory limit.
#![expect(
    unsafe_code,
    reason = "a global allocator is unsafe to implement; this one forwards every call to System unchanged"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use monty_types::{BASELINE_MEMORY, LIVE_MEMORY, OOM_EXIT_CODE};

static ARMED: AtomicBool = AtomicBool::new(false);
static HARD_LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Room above a run's budget for the interpreter to reach its next check.
const HEADROOM: usize = 16 * 1024 * 1024;

/// Install as `#[global_allocator]` in the binary that runs workers.
pub struct Accounting;

// SAFETY: every method forwards its arguments unchanged to `System` and
// returns what `System` returned (or ends the process); counting touches
// only atomics.
unsafe impl GlobalAlloc for Accounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: the caller's layout, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        refund(layout.size());
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: the caller's layout, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            charge(new_size - layout.size());
        } else {
            refund(layout.size() - new_size);
        }
        // SAFETY: `ptr` and `layout` describe a live block of this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[inline]
fn charge(size: usize) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let live = LIVE_MEMORY
        .fetch_add(size, Ordering::Relaxed)
        .saturating_add(size);
    if live > HARD_LIMIT.load(Ordering::Relaxed) {
        over_limit();
    }
}

#[inline]
fn refund(size: usize) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    // Blocks allocated before arming were never charged.
    let _ = LIVE_MEMORY.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
        Some(live.saturating_sub(size))
    });
}

#[cold]
fn over_limit() -> ! {
    HARD_LIMIT.store(usize::MAX, Ordering::Relaxed);
    let _ = writeln!(std::io::stderr(), "sandbox: memory limit exceeded");
    std::process::exit(OOM_EXIT_CODE)
}

/// Starts accounting (once, in a worker) and reports whether this binary's
/// allocator is [`Accounting`].
pub fn arm() -> bool {
    ARMED.store(true, Ordering::Relaxed);
    let before = LIVE_MEMORY.load(Ordering::Relaxed);
    // black_box: an allocation the optimiser can see through may be elided.
    let probe = std::hint::black_box(vec![0u8; 4096]);
    let counted = LIVE_MEMORY.load(Ordering::Relaxed) >= before + probe.len();
    drop(std::hint::black_box(probe));
    counted
}

/// A run's budget starts from what the worker holds now.
pub fn start_run(budget: usize) {
    let live = LIVE_MEMORY.load(Ordering::Relaxed);
    BASELINE_MEMORY.store(live, Ordering::Relaxed);
    HARD_LIMIT.store(
        live.saturating_add(budget).saturating_add(HEADROOM),
        Ordering::Relaxed,
    );
}

/// Between runs only the worker's own bookkeeping allocates.
pub fn end_run() {
    HARD_LIMIT.store(usize::MAX, Ordering::Relaxed);
}
