//! Spin before sleeping (`--idle-spin`).
//!
//! A worker that sleeps in `epoll_wait` between responses has to be woken by the kernel for
//! the next one, and that wake-up is paid by whoever delivers the packet: on loopback, the
//! server's own core. So a generator that keeps sleeping and waking makes the server it
//! measures slower, and adds its own wake-up time to every latency. A worker that polls for
//! a short while before it sleeps never sleeps under load. Each turn also yields the CPU, so
//! a server sharing the core still runs, and after `budget` without a response the worker
//! sleeps as before: an idle or slow run costs at most one budget of spinning per pause.

use std::cell::Cell;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Per-worker spin state: the connections report responses, the spinner watches.
pub struct Idle {
    budget: Duration,
    responses: Cell<u64>,
    sleeping: Cell<bool>,
    wake: Notify,
}

impl Idle {
    /// `budget` zero: never spin (the runtime sleeps whenever nothing is ready).
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            responses: Cell::new(0),
            sleeping: Cell::new(false),
            wake: Notify::new(),
        }
    }

    /// A response arrived: the worker is busy, so spin again if it had stopped.
    pub fn response(&self) {
        self.responses.set(self.responses.get().wrapping_add(1));
        if self.sleeping.get() {
            self.wake.notify_one();
        }
    }

    /// True while the spinner waits for a response instead of polling.
    #[cfg(test)]
    pub fn sleeping(&self) -> bool {
        self.sleeping.get()
    }

    /// Runs beside the connections until aborted. Every `yield_now` makes the runtime poll
    /// the sockets without blocking and run whatever became ready, then come back here.
    pub async fn spin(&self) {
        if self.budget.is_zero() {
            return;
        }
        let mut quiet = Quiet::new(self.responses.get());
        loop {
            tokio::task::yield_now().await;
            match quiet.after_turn(self.responses.get(), self.budget, Instant::now) {
                Turn::Busy => {}
                // Nothing arrived: let anything else on this core run before polling again.
                Turn::Quiet => std::thread::yield_now(),
                Turn::TooLong => {
                    self.sleeping.set(true);
                    self.wake.notified().await;
                    self.sleeping.set(false);
                    quiet = Quiet::new(self.responses.get());
                }
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// Responses arrived during the turn.
    Busy,
    /// None arrived, for less than the budget so far.
    Quiet,
    /// None arrived for longer than the budget.
    TooLong,
}

/// Since when no response has arrived. The clock is read only in quiet turns, so a busy
/// worker pays nothing per turn.
struct Quiet {
    seen: u64,
    since: Option<Instant>,
}

impl Quiet {
    fn new(seen: u64) -> Self {
        Self { seen, since: None }
    }

    fn after_turn(
        &mut self,
        responses: u64,
        budget: Duration,
        now: impl FnOnce() -> Instant,
    ) -> Turn {
        if responses != self.seen {
            self.seen = responses;
            self.since = None;
            return Turn::Busy;
        }
        let now = now();
        let since = *self.since.get_or_insert(now);
        if now.saturating_duration_since(since) > budget {
            Turn::TooLong
        } else {
            Turn::Quiet
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    #[test]
    fn quiet_counts_from_the_first_quiet_turn_after_a_response() {
        let t0 = Instant::now();
        let at = |us| move || t0 + Duration::from_micros(us);
        let budget = Duration::from_micros(50);
        let mut quiet = Quiet::new(0);
        assert_eq!(quiet.after_turn(0, budget, at(0)), Turn::Quiet);
        assert_eq!(quiet.after_turn(0, budget, at(40)), Turn::Quiet);
        // A response restarts the count; the clock is not even read.
        let no_clock = || -> Instant { panic!("a busy turn must not read the clock") };
        assert_eq!(quiet.after_turn(1, budget, no_clock), Turn::Busy);
        assert_eq!(quiet.after_turn(1, budget, at(45)), Turn::Quiet);
        assert_eq!(quiet.after_turn(1, budget, at(95)), Turn::Quiet);
        assert_eq!(quiet.after_turn(1, budget, at(96)), Turn::TooLong);
    }

    #[test]
    fn spinner_sleeps_when_quiet_and_wakes_on_a_response() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            // A budget far above what a few turns take even on a loaded machine: once woken,
            // the spinner must still be awake when checked (with 1 ms it went back to sleep
            // between the wake and the check whenever another process held the core).
            let idle = Rc::new(Idle::new(Duration::from_millis(200)));
            let spinner = tokio::task::spawn_local({
                let idle = idle.clone();
                async move { idle.spin().await }
            });
            // The timer below can only fire because the spinner stops polling: a runtime
            // with a task that yields forever still serves timers, so check the state too.
            tokio::time::sleep(Duration::from_millis(600)).await;
            assert!(
                idle.sleeping(),
                "no response for 600 ms: the spinner should sleep"
            );
            idle.response();
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            assert!(!idle.sleeping(), "a response should wake the spinner");
            spinner.abort();
        });
    }

    #[test]
    fn zero_budget_never_spins() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Returns at once instead of looping forever.
        runtime.block_on(Idle::new(Duration::ZERO).spin());
    }
}
