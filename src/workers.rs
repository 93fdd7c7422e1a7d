//! The background workers each service runs (in `serve` by default, or alone in
//! `floodgate worker`), and waiting for them at shutdown.

use std::time::Duration;

use floodgate_core::AppContext;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn spawn_all(ctx: &AppContext, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
    let (c, s) = (ctx.clone(), stop.clone());
    vec![
        tokio::spawn(floodgate_giftcodes::run_worker(c.clone(), s.clone())),
        tokio::spawn(floodgate_primes::run_workers(c.clone(), s.clone())),
        tokio::spawn(floodgate_todos::run_workers(c, s)),
    ]
}

/// Waits for every worker to finish its current work, up to `limit` in all.
pub async fn join_all(tasks: Vec<JoinHandle<()>>, limit: Duration) {
    let all = futures::future::join_all(tasks);
    if tokio::time::timeout(limit, all).await.is_err() {
        tracing::warn!("workers did not stop in time; uncommitted work will be redelivered");
    }
}
