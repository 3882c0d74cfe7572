//! The process's budget of engine connections: how many may be open at once, so that
//! Shoal never runs out of file descriptors.
//!
//! Every connection to an engine takes one descriptor for as long as it is open: a node's
//! event stream, its refresh and create connections, each HTTP worker's proxy connections
//! and the hijack relay's raw ones. awc keeps idle connections pooled and closes one only
//! when it next takes it from the pool, never on a timer, so idle connections held
//! descriptors for good: at 8,000 engines Shoal sat at its limit (20,000 here), creates
//! were answered 502 ("Too many open files") and the API could not accept clients.
//!
//! Two rules fix it, both process-wide because connections are opened on every thread:
//! - **A slot per connection.** [`connect`](super::conn::connect) takes a [`Slot`] before it
//!   dials and the connection holds it until closed. When none is free the dial waits
//!   (inside its caller's connect timeout) instead of failing with `EMFILE`; the room
//!   left under the open-file limit stays for clients, listeners and files.
//! - **Idle connections let go under pressure.** Once three quarters of the slots are
//!   taken (or a dial waits), [`pressed`] is true: each engine client's pools close their
//!   connections after a second without a call and hold one connection each (`pools`),
//!   so at rest a node costs one descriptor, its event stream. While a dial waits
//!   ([`starved`]) idle pools close at once. Below the mark nothing changes: connections
//!   stay pooled and a refresh or a TLS engine's call reuses its connection. (With the
//!   mark at half, 10,000 engines under 20,000 descriptors were pressed by their event
//!   streams alone, and every create dialed its engine: BENCHMARKS.md, issue 16's fifth
//!   round.)
//!
//! Unconfigured (tests, `shoal join`) there is no budget: every dial proceeds at once.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The configured budget; set once, by [`configure`].
static BUDGET: OnceLock<Budget> = OnceLock::new();

struct Budget {
    slots: Arc<Semaphore>,
    /// The slots in all.
    size: usize,
    /// Dials waiting for a slot now.
    waiting: AtomicUsize,
    born: Instant,
    /// Seconds after `born` of the last warning that the budget is full (0: none yet).
    warned: AtomicU64,
}

/// Least time between two warnings that the budget is full.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl Budget {
    /// Says in the log, at most once a minute, that dials wait: their callers' errors will
    /// only say that connecting timed out.
    fn warn_full(&self) {
        let now = self.born.elapsed().as_secs();
        let last = self.warned.load(Ordering::Relaxed);
        if (last == 0 || now >= last + WARN_EVERY.as_secs())
            && self
                .warned
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                budget = self.size,
                "every engine connection of the budget is open; new ones wait for one to close \
                 (raise the open-file limit or --engine-connections)"
            );
        }
    }
}

/// One open engine connection's place in the budget; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            crate::metrics::engine_connection_closed();
        }
    }
}

/// Sets the budget to `size` connections. The first call wins: the budget is the
/// process's, and in-process test servers after the first share it. Answers whether
/// this call set it.
pub fn configure(size: usize) -> bool {
    let size = size.clamp(1, Semaphore::MAX_PERMITS);
    let set = BUDGET
        .set(Budget {
            slots: Arc::new(Semaphore::new(size)),
            size,
            waiting: AtomicUsize::new(0),
            born: Instant::now(),
            warned: AtomicU64::new(0),
        })
        .is_ok();
    if set {
        crate::metrics::engine_connection_budget(size);
    }
    set
}

/// The budget's size, when one is configured.
pub fn size() -> Option<usize> {
    BUDGET.get().map(|b| b.size)
}

/// The engine connections open now (0 without a budget).
pub fn open() -> usize {
    BUDGET
        .get()
        .map_or(0, |b| b.size - b.slots.available_permits())
}

/// Whether idle engine connections should be closed now: three quarters of the slots are
/// taken, or a dial is waiting for one.
pub fn pressed() -> bool {
    BUDGET.get().is_some_and(|b| {
        b.waiting.load(Ordering::Relaxed) > 0 || b.slots.available_permits() <= b.size / 4
    })
}

/// Whether a dial is waiting for a slot now: a client that has no call under way should
/// close its connections at once.
pub fn starved() -> bool {
    BUDGET
        .get()
        .is_some_and(|b| b.waiting.load(Ordering::Relaxed) > 0)
}

/// A slot for one new connection, waiting while none is free (callers bound the wait with
/// their connect timeout; dropping the future leaves the queue).
pub(super) async fn slot() -> Slot {
    let Some(budget) = BUDGET.get() else {
        return Slot { permit: None };
    };
    let permit = match budget.slots.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            crate::metrics::engine_connection_wait();
            budget.warn_full();
            let _waiting = Waiting::enter(&budget.waiting);
            // Never closed: the semaphore lives as long as the process.
            match budget.slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return Slot { permit: None },
            }
        }
    };
    crate::metrics::engine_connection_opened();
    Slot {
        permit: Some(permit),
    }
}

/// Counts a dial in `waiting` while it waits (also when its caller gives up).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
