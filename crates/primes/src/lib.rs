//! Prime jobs (SPEC section 3, seed 002): `POST /generate` queues a job on the bus,
//! workers compute the first n primes with a segmented sieve, `GET /status/{id}` serves
//! the stored, pre-encoded answer. Its settings are in `settings`.

mod api;
mod commits;
mod error;
mod input;
mod job;
mod model;
mod panel;
mod queue;
pub mod settings;
mod sieve;
mod state;
mod status;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use floodgate_core::AppContext;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use panel::panel;
pub use settings::Settings;
pub use sieve::{first_primes, nth_prime_upper_bound};

/// The consumer group every node's workers join.
pub const GROUP: &str = "floodgate-primes";
/// The name of the job duration histogram (milliseconds).
pub const TASK_DURATION: &str = "prime_task_duration_milliseconds";

/// The histogram buckets of this service's metrics: the seed's buckets for prime task
/// durations (SPEC section 3). The node installs the recorder with them.
pub const HISTOGRAMS: &[floodgate_core::metrics::Buckets] = &[floodgate_core::metrics::Buckets {
    metric: TASK_DURATION,
    edges: &[
        10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
    ],
}];

/// Default bound on jobs queued and not yet finished, cluster-wide.
pub const DEFAULT_MAX_QUEUED: u32 = 10_000;

/// Tunables beyond `Config` (tests use small values).
#[derive(Debug, Clone)]
pub struct Options {
    /// Submissions beyond this many unfinished jobs get 503 with Retry-After.
    pub max_queued: u32,
    /// How long a queued job counts against `max_queued` at most (see `queue`).
    pub queue_lease: Duration,
    /// Consumer group of the workers.
    pub group: String,
    /// Jobs computed at once per node.
    pub concurrency: usize,
    /// At shutdown, how long running jobs may take to finish before they are left
    /// uncommitted (and redelivered to another worker).
    pub drain_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_queued: DEFAULT_MAX_QUEUED,
            queue_lease: Duration::from_secs(15 * 60),
            group: GROUP.to_string(),
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl Options {
    /// The defaults with the bounds `Config` sets (`PRIMES_MAX_QUEUED`).
    pub fn from_config(config: &floodgate_core::Config) -> Self {
        Options {
            max_queued: config.settings::<Settings>().max_queued,
            ..Options::default()
        }
    }
}

/// `POST /generate` and `GET /status/{request_id}`, state applied.
pub fn router(ctx: &AppContext) -> Router {
    router_with(ctx, Options::from_config(&ctx.config))
}

pub fn router_with(ctx: &AppContext, opts: Options) -> Router {
    let settings = ctx.config.settings::<Settings>();
    let state = state::ApiState {
        ctx: ctx.clone(),
        pool: status::queue_key(&settings.topic).into(),
        opts: Arc::new(opts),
        settings: Arc::new(settings.clone()),
    };
    Router::new()
        .route("/generate", post(api::generate))
        .route("/status/{request_id}", get(api::job_status))
        .with_state(state)
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    api::openapi()
}

/// Consumes `prime-jobs` in group `floodgate-primes` (another topic: a group of its own)
/// until `stop`, then lets running jobs finish (or leaves them uncommitted for
/// redelivery) and returns.
pub async fn workers(ctx: AppContext, stop: CancellationToken) {
    let group = floodgate_bus::group_for(
        GROUP,
        &ctx.config.settings::<Settings>().topic,
        "prime-jobs",
    );
    let opts = Options {
        group,
        ..Options::default()
    };
    workers_with(ctx, opts, stop).await
}

pub async fn workers_with(ctx: AppContext, opts: Options, stop: CancellationToken) {
    worker::run(ctx, opts, stop).await
}
