//! The background workers each service runs (in `serve` by default, or alone in
//! `floodgate worker`), and waiting for them at shutdown.

use std::time::Duration;

use floodgate_core::config::ServiceSettings;
use floodgate_core::AppContext;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts the workers `FLOODGATE_WORKERS` names (all by default): an operator may run the
/// seed's own gift-code worker next to floodgate's prime and todo workers.
pub fn spawn_all(ctx: &AppContext, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
    let (c, s, which) = (ctx.clone(), stop.clone(), &ctx.config.workers);
    let runs = |worker: Option<&str>| worker.is_some_and(|w| which.runs(w));
    let mut tasks = Vec::new();
    if runs(floodgate_giftcodes::Settings::WORKER) {
        tasks.push(tokio::spawn(floodgate_giftcodes::workers(
            c.clone(),
            s.clone(),
        )));
    }
    if runs(floodgate_primes::Settings::WORKER) {
        tasks.push(tokio::spawn(floodgate_primes::workers(
            c.clone(),
            s.clone(),
        )));
    }
    if runs(floodgate_todos::Settings::WORKER) {
        tasks.push(tokio::spawn(floodgate_todos::workers(c, s)));
    }
    tasks
}

/// Waits for every worker to finish its current work, up to `limit` in all.
pub async fn join_all(tasks: Vec<JoinHandle<()>>, limit: Duration) {
    let all = futures::future::join_all(tasks);
    if tokio::time::timeout(limit, all).await.is_err() {
        tracing::warn!("workers did not stop in time; uncommitted work will be redelivered");
    }
}
