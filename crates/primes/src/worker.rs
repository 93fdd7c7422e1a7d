//! The workers: one group member per node taking jobs off `prime-jobs`, running up to
//! `Options::concurrency` at once on the blocking pool, committing each job only after its
//! result is stored. A job whose worker dies is redelivered and simply computed again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floodgate_bus::{BusError, Consumer, Message};
use floodgate_core::retry::Backoff;
use floodgate_core::telemetry::trace;
use floodgate_core::AppContext;
use floodgate_store::{SharedStore, StoreResult, Swap};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::commits::Commits;
use crate::job::{self, Decoded};
use crate::{queue, sieve, status, Options};

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What a job needs from its node.
struct Shared {
    store: SharedStore,
    ttl: Duration,
    max_n: u64,
    pool: String,
    /// Cancelled once the drain time is over: jobs stop retrying the store and are left
    /// uncommitted, to be redelivered.
    abandon: CancellationToken,
}

pub async fn run(ctx: AppContext, opts: Options, stop: CancellationToken) {
    let settings = ctx.config.settings::<crate::Settings>();
    let topic = settings.topic.clone();
    let Some(mut consumer) = subscribe(&ctx, &topic, &opts.group, &stop).await else {
        return;
    };
    tracing::info!(%topic, group = %opts.group, concurrency = opts.concurrency, "prime workers started");
    let shared = Arc::new(Shared {
        store: ctx.backends.store.clone(),
        ttl: settings.result_ttl,
        max_n: settings.max_n,
        pool: status::queue_key(&topic),
        abandon: CancellationToken::new(),
    });
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Message>();
    let mut commits = Commits::default();
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            Some(msg) = done_rx.recv() => finish(&mut *consumer, &mut commits, msg).await,
            (permit, got) = next(&mut *consumer, &permits) => match got {
                Ok(msg) => {
                    backoff.reset();
                    dispatch(msg, permit, &mut commits, &shared, &done_tx);
                }
                Err(BusError::Closed) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving prime jobs failed; retrying");
                    backoff.wait(&stop).await;
                }
            }
        }
    }
    drain(
        &mut *consumer,
        &mut commits,
        &mut done_rx,
        opts.drain_timeout,
    )
    .await;
    shared.abandon.cancel();
    if let Err(e) = consumer.close().await {
        tracing::warn!(error = %e, "closing the prime job consumer failed");
    }
    tracing::info!("prime workers stopped");
}

/// Runs a job in its own task; a poison message goes straight to "done" (committed, not
/// retried).
fn dispatch(
    msg: Message,
    permit: Option<OwnedSemaphorePermit>,
    commits: &mut Commits,
    shared: &Arc<Shared>,
    done: &mpsc::UnboundedSender<Message>,
) {
    commits.start(&msg);
    match job::decode(&msg.payload) {
        Decoded::Poison(why) => {
            tracing::warn!(offset = msg.offset, partition = msg.partition, error = %why, "poison prime job skipped");
            metrics::counter!("prime_jobs_completed_total", "result" => "poison").increment(1);
            let _ = done.send(msg);
        }
        Decoded::Job { id, n } => {
            // Which job came from where: lets a job that never completes be traced in the logs.
            tracing::debug!(%id, partition = msg.partition, offset = msg.offset, "prime job received");
            let shared = shared.clone();
            let done = done.clone();
            let span =
                trace::consumer_span("primes.compute", &msg.topic, msg.header(trace::TRACEPARENT));
            let job = async move {
                // None: abandoned at shutdown, so it stays uncommitted.
                if process(&shared, id, n, permit).await.is_some() {
                    let _ = done.send(msg);
                }
            };
            tokio::spawn(job.instrument(span));
        }
    }
}

async fn subscribe(
    ctx: &AppContext,
    topic: &str,
    group: &str,
    stop: &CancellationToken,
) -> Option<Box<dyn Consumer>> {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    loop {
        match ctx.backends.bus.subscribe(topic, group).await {
            Ok(c) => return Some(c),
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to prime jobs; retrying"),
        }
        if !backoff.wait(stop).await {
            return None;
        }
    }
}

/// Waits for a free slot, then for a message (both cancel-safe, for `select!`).
async fn next(
    consumer: &mut dyn Consumer,
    permits: &Arc<Semaphore>,
) -> (Option<OwnedSemaphorePermit>, Result<Message, BusError>) {
    // The semaphore is never closed; None would only mean "run without a slot".
    let permit = permits.clone().acquire_owned().await.ok();
    (permit, consumer.recv().await)
}

async fn finish(consumer: &mut dyn Consumer, commits: &mut Commits, msg: Message) {
    if let Some(upto) = commits.finish(msg) {
        // A failed commit only means redelivery later; the jobs are idempotent.
        if let Err(e) = consumer.commit(&upto).await {
            tracing::warn!(error = %e, offset = upto.offset, "committing prime jobs failed");
        }
    }
}

/// After `stop`: lets running jobs finish (and commits them) for up to `timeout`.
async fn drain(
    consumer: &mut dyn Consumer,
    commits: &mut Commits,
    done_rx: &mut mpsc::UnboundedReceiver<Message>,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while commits.running() > 0 {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(msg)) => finish(consumer, commits, msg).await,
            _ => {
                tracing::warn!(
                    running = commits.running(),
                    "prime jobs left uncommitted at shutdown; they will be redelivered"
                );
                return;
            }
        }
    }
}

/// What became of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Complete,
    Failed,
    /// Already complete or failed (a redelivery), or expired: nothing written.
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Runs one job to a stored final record. None when abandoned at shutdown (the store did
/// not answer): the message stays uncommitted.
async fn process(
    shared: &Shared,
    id: Uuid,
    n: Result<u64, String>,
    permit: Option<OwnedSemaphorePermit>,
) -> Option<Outcome> {
    let started = Instant::now();
    let key = status::key(&id);
    let outcome = match retry(shared, || claim(shared, &key)).await? {
        Claim::Skip => Outcome::Skipped,
        Claim::Run => {
            let _running = Running::start();
            let (record, outcome) = match checked(n, shared.max_n) {
                Err(why) => (status::failed(&why), Outcome::Failed),
                Ok(n) => compute(n).await,
            };
            // The CPU part is over; storing is I/O, so the next job may start meanwhile.
            drop(permit);
            retry(shared, || {
                shared.store.set(&key, record.clone(), Some(shared.ttl))
            })
            .await?;
            metrics::histogram!(crate::TASK_DURATION)
                .record(started.elapsed().as_secs_f64() * 1000.0);
            outcome
        }
    };
    queue::release(&shared.store, &shared.pool, &id.hyphenated().to_string()).await;
    metrics::counter!("prime_jobs_completed_total", "result" => outcome.label()).increment(1);
    Some(outcome)
}

enum Claim {
    Run,
    Skip,
}

/// `prime_jobs_running`: jobs this process is computing or storing (the dashboard's
/// "running"); a guard, so an abandoned job is taken back out too.
struct Running(metrics::Gauge);

impl Running {
    fn start() -> Self {
        let gauge = metrics::gauge!("prime_jobs_running");
        gauge.increment(1.0);
        Running(gauge)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Marks the job running, unless it is already final (never overwrite a result) or its
/// record is gone (expired before a worker got to it: nobody will ask any more).
async fn claim(shared: &Shared, key: &str) -> StoreResult<Claim> {
    let running = Bytes::from_static(status::RUNNING);
    let store = &shared.store;
    if store
        .compare_and_set(
            key,
            Swap {
                expected: Some(status::PENDING),
                new: running,
                ttl: Some(shared.ttl),
            },
        )
        .await?
    {
        return Ok(Claim::Run);
    }
    Ok(match store.get(key).await? {
        None => Claim::Skip,
        Some(record) if status::is_final(&record) => Claim::Skip,
        // Running: a redelivery after a worker died mid-job. Compute it again.
        Some(_) => Claim::Run,
    })
}

fn checked(n: Result<u64, String>, max: u64) -> Result<u64, String> {
    match n? {
        0 => Err("n must be a positive integer".into()),
        n if n > max => Err(format!("n exceeds PRIMES_MAX_N ({max})")),
        n => Ok(n),
    }
}

/// Sieve and encode on the blocking pool: a million primes must not stall the runtime.
async fn compute(n: u64) -> (Bytes, Outcome) {
    let work = tokio::task::spawn_blocking(move || {
        let count = usize::try_from(n).unwrap_or(usize::MAX);
        let primes = sieve::first_primes(count);
        if primes.len() == count {
            Ok(status::complete(&primes))
        } else {
            Err(format!("found {} of {count} primes", primes.len()))
        }
    });
    match work.await {
        Ok(Ok(record)) => (record, Outcome::Complete),
        Ok(Err(why)) => (status::failed(&why), Outcome::Failed),
        Err(e) => {
            tracing::error!(error = %e, n, "prime computation crashed");
            (status::failed("computation failed"), Outcome::Failed)
        }
    }
}

/// Retries a store call with backoff until it succeeds or the job is abandoned.
async fn retry<T, F, Fut>(shared: &Shared, mut call: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    loop {
        match call().await {
            Ok(v) => return Some(v),
            Err(e) => tracing::warn!(error = %e, "prime job store call failed; retrying"),
        }
        if !backoff.wait(&shared.abandon).await {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_store::{Lease, MemoryStore};

    fn shared(store: SharedStore) -> Shared {
        Shared {
            store,
            ttl: Duration::from_secs(60),
            max_n: 100,
            pool: "pool".into(),
            abandon: CancellationToken::new(),
        }
    }

    async fn record(s: &Shared, id: &Uuid) -> Option<Bytes> {
        s.store.get(&status::key(id)).await.unwrap()
    }

    #[tokio::test]
    async fn a_pending_job_is_completed() {
        let s = shared(Arc::new(MemoryStore::new()));
        let id = Uuid::new_v4();
        let key = status::key(&id);
        s.store
            .set(&key, Bytes::from_static(status::PENDING), None)
            .await
            .unwrap();
        assert_eq!(process(&s, id, Ok(4), None).await, Some(Outcome::Complete));
        assert_eq!(
            record(&s, &id).await.unwrap(),
            status::complete(&[2, 3, 5, 7])
        );
    }

    #[tokio::test]
    async fn a_redelivered_job_never_overwrites_a_result() {
        let s = shared(Arc::new(MemoryStore::new()));
        let id = Uuid::new_v4();
        let done = status::complete(&[2, 3]);
        s.store
            .set(&status::key(&id), done.clone(), None)
            .await
            .unwrap();
        assert_eq!(process(&s, id, Ok(3), None).await, Some(Outcome::Skipped));
        assert_eq!(record(&s, &id).await.unwrap(), done);
    }

    #[tokio::test]
    async fn a_running_job_is_computed_again() {
        let s = shared(Arc::new(MemoryStore::new()));
        let id = Uuid::new_v4();
        s.store
            .set(&status::key(&id), Bytes::from_static(status::RUNNING), None)
            .await
            .unwrap();
        assert_eq!(process(&s, id, Ok(2), None).await, Some(Outcome::Complete));
        assert_eq!(record(&s, &id).await.unwrap(), status::complete(&[2, 3]));
    }

    #[tokio::test]
    async fn an_expired_job_is_dropped() {
        let s = shared(Arc::new(MemoryStore::new()));
        let id = Uuid::new_v4();
        assert_eq!(process(&s, id, Ok(2), None).await, Some(Outcome::Skipped));
        assert_eq!(record(&s, &id).await, None, "no record is resurrected");
    }

    #[tokio::test]
    async fn bad_n_fails_the_job() {
        let s = shared(Arc::new(MemoryStore::new()));
        for n in [
            Ok(0),
            Ok(101),
            Err("n must be a positive integer, got \"x\"".to_string()),
        ] {
            let id = Uuid::new_v4();
            s.store
                .set(&status::key(&id), Bytes::from_static(status::PENDING), None)
                .await
                .unwrap();
            assert_eq!(process(&s, id, n, None).await, Some(Outcome::Failed));
            let v: serde_json::Value =
                serde_json::from_slice(&record(&s, &id).await.unwrap()).unwrap();
            assert_eq!(v["status"], "failed");
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }

    #[tokio::test]
    async fn a_finished_job_gives_its_queue_slot_back() {
        let s = shared(Arc::new(MemoryStore::new()));
        let id = Uuid::new_v4();
        let holder = id.hyphenated().to_string();
        assert!(s
            .store
            .lease_acquire(Lease {
                pool: &s.pool,
                holder: &holder,
                capacity: 1,
                ttl: Duration::from_secs(60),
            })
            .await
            .unwrap());
        s.store
            .set(&status::key(&id), Bytes::from_static(status::PENDING), None)
            .await
            .unwrap();
        process(&s, id, Ok(1), None).await;
        assert_eq!(s.store.lease_count(&s.pool).await.unwrap(), 0);
    }
}
