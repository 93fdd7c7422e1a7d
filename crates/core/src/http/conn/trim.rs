//! Gives back to the system the memory that many connections free at once. A connection
//! that parks or closes frees hyper's buffers (~12 kB touched); glibc keeps such freed
//! chunks in its arenas for reuse instead of returning them, so after a burst of 10,000
//! connections the process stayed ~7 kB per connection larger than before it, although the
//! heap in use was back down. `malloc_trim(0)` returns the free pages. Nothing is done per
//! request: parks and closes are counted (one relaxed add), and a once-a-second check trims,
//! off the async workers, only after [`TRIM_AFTER`] of them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

static RELEASED: AtomicU64 = AtomicU64::new(0);

/// About 12 MB of hyper buffers: below this, what glibc keeps is not worth a trim.
pub const TRIM_AFTER: u64 = 1024;

/// A connection let go of hyper's state (parked or closed).
pub(crate) fn released() {
    RELEASED.fetch_add(1, Relaxed);
}

/// Checks once a second until `stop`, trimming after a burst of releases.
pub(crate) async fn run(stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trimmed_at = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = RELEASED.load(Relaxed);
        if now - trimmed_at >= TRIM_AFTER {
            trimmed_at = now;
            // It walks every arena under its lock: not on an async worker.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena).
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
