//! Start-up and shutdown of one node: connect backends, migrate, mount every router, start
//! workers, serve; on shutdown drain HTTP first, then stop workers, flush the bus and close
//! the database.

use std::net::SocketAddr;

use axum::Router;
use floodgate_core::backends::BackendError;
use floodgate_core::http::server::{serve, ServerOptions};
use floodgate_core::http::{answer_unmatched, apply_middleware, core_router, Readiness};
use floodgate_core::{AppContext, Backends, Config};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::workers;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    /// Run the service workers in this process (`serve` default; off with `--no-workers`).
    pub workers: bool,
    /// Serve the service APIs (off for `floodgate worker`, which still serves /health,
    /// /ready, /metrics and /dashboard on its own address so it can be probed and scraped).
    pub http: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            workers: true,
            http: true,
        }
    }
}

/// A started node. Cancel `shutdown` (or send SIGTERM to the binary) to stop it; `done`
/// finishes when everything has drained.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub readiness: Readiness,
    pub ctx: AppContext,
    pub done: JoinHandle<()>,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "floodgate",
    description = "Gift codes, prime jobs, todos and a running sum, served fast.\n\n\
**Authorising.** Todo writes need `Authorization: Bearer TOKEN`: mint one with \
`floodgate token --sub me` (signed with `JWT_SECRET`). `/abacus/*` needs `X-API-Key`, one of \
`ABACUS_API_KEYS`. With every backend embedded and no secrets configured, the first \
`floodgate serve` generates both into `data/dev-secrets.env` (`. data/dev-secrets.env` puts \
them in your shell). Use **Authorize** above to send them from this page."
))]
struct ApiDoc;

/// Every service's database migrations (only todos has tables).
pub const MIGRATIONS: &[&[floodgate_db::Migration]] = &[floodgate_todos::MIGRATIONS];

/// One OpenAPI document for every route the node serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(floodgate_core::http::openapi());
    doc.merge(floodgate_giftcodes::openapi());
    doc.merge(floodgate_primes::openapi());
    doc.merge(floodgate_todos::openapi());
    doc.merge(floodgate_abacus::openapi());
    doc
}

/// What a worker-only process serves: probes, metrics and the dashboard.
pub fn ops_routes(readiness: Readiness, dashboard: Router) -> Router {
    Router::new()
        .merge(core_router(readiness, floodgate_core::http::openapi()))
        .merge(dashboard)
}

/// The dashboard's routes and sampling task: this node's row in the cluster view, with a
/// panel per service.
pub fn dashboard(
    ctx: &AppContext,
    addr: SocketAddr,
    opts: StartOptions,
    stop: &CancellationToken,
) -> (Router, JoinHandle<()>) {
    let role = match (opts.http, opts.workers) {
        (true, true) => "serve",
        (true, false) => "serve --no-workers",
        (false, _) => "worker",
    };
    let me = floodgate_dashboard::Identity {
        node: ctx.config.node_id.clone(),
        role,
        addr: addr.to_string(),
    };
    let panels = vec![
        floodgate_giftcodes::panel(ctx),
        floodgate_primes::panel(ctx),
        floodgate_todos::panel(ctx),
        floodgate_abacus::panel(ctx),
    ];
    floodgate_dashboard::start(me, ctx.backends.store.clone(), panels, stop.clone())
}

/// Everything the node serves, before middleware, and the listeners the routes depend on
/// (gift code replies): they run until `stop`, then give back what they hold.
pub fn routes(
    ctx: &AppContext,
    readiness: Readiness,
    dashboard: Router,
    stop: &CancellationToken,
) -> (Router, Vec<JoinHandle<()>>) {
    let gift_codes = floodgate_giftcodes::GiftCodes::start(ctx, stop.clone());
    let router = Router::new()
        .merge(core_router(readiness, openapi()))
        .merge(gift_codes.router())
        .merge(dashboard)
        .merge(floodgate_primes::router(ctx))
        .merge(floodgate_todos::router(ctx))
        .merge(floodgate_abacus::router(ctx));
    (router, gift_codes.take_listener().into_iter().collect())
}

pub async fn start(config: Config, opts: StartOptions) -> Result<Running, StartError> {
    // The port first: a busy one fails at once, before any backend is touched.
    let listen = config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(listen);
    for line in &config.ignored_settings {
        tracing::warn!("{line}");
    }
    let backends = Backends::connect(&config).await?;
    let ctx = AppContext::new(config, backends);
    let shutdown = CancellationToken::new();
    let workers_stop = CancellationToken::new();
    if ctx.config.metrics {
        floodgate_core::metrics::install_with(floodgate_primes::HISTOGRAMS);
        tokio::spawn(floodgate_core::metrics::upkeep_loop());
    }
    {
        let b = ctx.backends.clone();
        let stop = workers_stop.clone();
        tokio::spawn(async move { b.migrate_until_done(MIGRATIONS, stop).await });
    }
    let readiness = Readiness::new(ctx.backends.clone());
    let (dashboard, sampler) = dashboard(&ctx, addr, opts, &workers_stop);
    let (routes, mut listeners) = if opts.http {
        routes(&ctx, readiness.clone(), dashboard, &workers_stop)
    } else {
        (ops_routes(readiness.clone(), dashboard), Vec::new())
    };
    // Joined like the workers: it leaves the cluster view on the way out.
    listeners.push(sampler);
    let router = apply_middleware(
        answer_unmatched(routes),
        ctx.config.body_limit,
        ctx.config.metrics,
    );
    let server_opts = ServerOptions::from_config(&ctx.config);
    let mut worker_tasks = if opts.workers {
        workers::spawn_all(&ctx, &workers_stop)
    } else {
        Vec::new()
    };
    // Waited for like workers: reply listeners give their slot back on the way out.
    worker_tasks.extend(listeners);
    let done = {
        let (shutdown, readiness, ctx) = (shutdown.clone(), readiness.clone(), ctx.clone());
        tokio::spawn(async move {
            {
                let (shutdown, readiness) = (shutdown.clone(), readiness.clone());
                tokio::spawn(async move {
                    shutdown.cancelled().await;
                    readiness.begin_shutdown();
                });
            }
            serve(listener, router, server_opts, shutdown).await;
            // Requests have drained: now workers finish their batch and commit offsets.
            workers_stop.cancel();
            workers::join_all(worker_tasks, ctx.config.shutdown_timeout).await;
            if let Err(e) = ctx.backends.bus.flush().await {
                tracing::warn!(error = %e, "bus flush at shutdown failed");
            }
            ctx.backends.db.close().await;
            tracing::info!("shutdown complete");
        })
    };
    let b = &ctx.backends;
    tracing::info!(%addr, node = %ctx.config.node_id, store = b.store.kind(), bus = b.bus.kind(), db = b.db.kind_name(), workers = opts.workers, "floodgate started");
    Ok(Running {
        addr,
        shutdown,
        readiness,
        ctx,
        done,
    })
}
