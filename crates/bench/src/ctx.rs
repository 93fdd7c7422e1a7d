//! What the connection loops of one worker thread (`closed.rs`, `open.rs`) share: the run's
//! clock, the request budget, the statistics, and the helpers they all use.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::ErrorKind;
use crate::error::BenchError;
use crate::idle::Idle;
use crate::plan::Plan;
use crate::stats::{Live, Row, Stats};

/// Shared clock of a run: every worker measures against the same instants.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// When load starts (warm-up included).
    pub start: Instant,
    /// When recording starts (after warm-up).
    pub record_from: Instant,
    /// When load stops, if a duration was given.
    pub end: Option<Instant>,
}

/// What a connection task needs, shared within one worker thread.
pub struct WorkerCtx {
    pub plan: Arc<Plan>,
    pub clock: Clock,
    pub stats: RefCell<Stats>,
    pub live: Arc<Live>,
    pub idle: Idle,
    /// Requests left under `-n`; None without a limit.
    budget: Cell<Option<u64>>,
}

impl WorkerCtx {
    /// The context of worker `index`: its share of the request budget, fresh statistics.
    pub fn new(
        plan: Arc<Plan>,
        index: usize,
        clock: Clock,
        live: Arc<Live>,
    ) -> Result<Self, BenchError> {
        Ok(WorkerCtx {
            stats: RefCell::new(Stats::new(plan.keep_rows, clock.record_from)?),
            budget: Cell::new(plan.budget_of(index)),
            idle: Idle::new(plan.idle_spin),
            plan,
            clock,
            live,
        })
    }

    /// Takes up to `want` requests from the budget; 0 means the budget is spent.
    pub fn take(&self, want: usize) -> usize {
        match self.budget.get() {
            None => want,
            Some(left) => {
                let granted = left.min(want as u64);
                self.budget.set(Some(left - granted));
                granted as usize
            }
        }
    }

    pub fn past_end(&self, now: Instant) -> bool {
        self.clock.end.is_some_and(|end| now >= end)
    }

    pub fn recording(&self, at: Instant) -> bool {
        at >= self.clock.record_from
    }

    /// Counts `count` requests that got no response.
    pub fn fail(&self, kind: ErrorKind, count: usize, row: Option<(u32, &[u16], Instant)>) {
        if count == 0 {
            return;
        }
        let mut stats = self.stats.borrow_mut();
        stats.record_error(kind, count as u64, Instant::now());
        if let (Some(rows), Some((conn, urls, sent))) = (&mut stats.rows, row) {
            let at_us = micros_between(self.clock.start, sent);
            let elapsed_us = micros_between(sent, Instant::now());
            let last = urls.len().saturating_sub(count);
            for index in 0..count {
                rows.push(Row {
                    at_us,
                    conn,
                    url: urls.get(last + index).copied().unwrap_or(0),
                    status: 0,
                    elapsed_us,
                    error: Some(kind),
                });
            }
        }
        drop(stats);
        self.live.add(0, count as u64);
    }
}

pub fn micros_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_micros()).unwrap_or(u64::MAX)
}

/// Backoff after consecutive connect failures, so a down server does not spin a core.
pub fn connect_backoff(failures: u32) -> Duration {
    Duration::from_millis(u64::from(failures.min(7)).pow(2) * 2)
}
