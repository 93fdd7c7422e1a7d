//! Worker threads: each runs a current-thread runtime driving its share of connections
//! (`closed.rs` or `open.rs`, sharing the thread's `ctx::WorkerCtx`), like wrk, and hands
//! back its statistics when the run ends.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use tokio::task::{JoinSet, LocalSet};

use crate::ctx::{Clock, WorkerCtx};
use crate::error::BenchError;
use crate::plan::Plan;
use crate::stats::{Live, Stats};
use crate::{closed, open};

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
    let ctx = Rc::new(WorkerCtx::new(plan, index, clock, live)?);
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
