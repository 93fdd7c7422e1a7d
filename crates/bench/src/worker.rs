//! Worker threads: each runs a current-thread runtime driving its share of connections,
//! like wrk, and hands back its statistics when the run ends.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::{JoinSet, LocalSet};

use crate::error::BenchError;
use crate::idle::Idle;
use crate::plan::Plan;
use crate::stats::{ErrorKind, Live, Row, Stats};
use crate::{closed, open};

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

/// A worker's result: its statistics and when its last connection finished.
pub struct Outcome {
    pub stats: Stats,
    pub finished: Instant,
}

/// Starts worker `index` on its own thread.
pub fn spawn(
    plan: Arc<Plan>,
    index: usize,
    clock: Clock,
    live: Arc<Live>,
) -> Result<oneshot::Receiver<Result<Outcome, BenchError>>, BenchError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("bench-{index}"))
        .spawn(move || {
            let _ = tx.send(run_worker(plan, index, clock, live));
        })
        .map_err(BenchError::Thread)?;
    Ok(rx)
}

fn run_worker(
    plan: Arc<Plan>,
    index: usize,
    clock: Clock,
    live: Arc<Live>,
) -> Result<Outcome, BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Thread)?;
    let ctx = Rc::new(WorkerCtx {
        stats: RefCell::new(Stats::new(plan.keep_rows, clock.record_from)?),
        budget: Cell::new(plan.budget_of(index)),
        idle: Idle::new(plan.idle_spin),
        plan,
        clock,
        live,
    });
    let local = LocalSet::new();
    let finished = local.block_on(&runtime, drive(ctx.clone(), index));
    let stats = ctx.stats.replace(Stats::new(false, clock.record_from)?);
    Ok(Outcome { stats, finished })
}

async fn drive(ctx: Rc<WorkerCtx>, index: usize) -> Instant {
    let mut tasks = JoinSet::new();
    for conn in ctx.plan.connections_of(index) {
        if ctx.plan.rate.is_some() {
            tasks.spawn_local(open::run(ctx.clone(), conn));
        } else {
            tasks.spawn_local(closed::run(ctx.clone(), conn));
        }
    }
    let spinner = tokio::task::spawn_local({
        let ctx = ctx.clone();
        async move { ctx.idle.spin().await }
    });
    let all_done = async {
        while tasks.join_next().await.is_some() {}
        Instant::now()
    };
    let finished = match ctx.clock.end {
        // Requests still in flight at the end are abandoned, as wrk does.
        Some(end) => tokio::select! {
            finished = all_done => finished,
            () = tokio::time::sleep_until(end.into()) => end,
        },
        None => all_done.await,
    };
    spinner.abort();
    finished
}

/// Backoff after consecutive connect failures, so a down server does not spin a core.
pub fn connect_backoff(failures: u32) -> Duration {
    Duration::from_millis(u64::from(failures.min(7)).pow(2) * 2)
}
