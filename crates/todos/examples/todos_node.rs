//! A todos-only node for process-level tests (kill -9) and `scripts/bench-todos`, until the
//! `floodgate` binary serves todos. Configuration comes from the environment exactly as for
//! `floodgate serve` (DATABASE_URL, REDIS_URL, KAFKA_BROKERS, JWT_SECRET, FLOODGATE_LISTEN…).
//!
//!   todos_node serve [--bare]   API + workers; --bare leaves out the shared HTTP middleware
//!   todos_node seed N          insert N seed todos, then bump the list version

use std::process::ExitCode;

use floodgate_core::config::{LoadOptions, Schema};
use floodgate_core::http::server::{serve, ServerOptions};
use floodgate_core::http::{apply_middleware, core_router, Readiness};
use floodgate_core::{AppContext, Backends, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let schema = Schema::core().with::<floodgate_todos::Settings>();
    let config = match schema.load(&LoadOptions::default()) {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("todos_node: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = floodgate_core::telemetry::init(config.log_json, &config.log_filter, None);
    let result = match args.first().map(String::as_str) {
        Some("serve") => run(config, args.iter().any(|a| a == "--bare")).await,
        Some("seed") => match args.get(1).and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => seed(config, n).await,
            None => Err("usage: todos_node seed N".into()),
        },
        _ => Err("usage: todos_node serve [--bare] | todos_node seed N".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("todos_node: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), Box<dyn std::error::Error>>;

async fn connect(config: &Config) -> Result<Backends, Box<dyn std::error::Error>> {
    let backends = Backends::connect(config).await?;
    backends.db.migrate(&[floodgate_todos::MIGRATIONS]).await?;
    backends
        .migrated
        .store(true, std::sync::atomic::Ordering::Release);
    Ok(backends)
}

async fn seed(config: Config, n: u64) -> Res {
    let backends = connect(&config).await?;
    let inserted = floodgate_todos::seed(&backends.db, n).await?;
    floodgate_todos::invalidate(&AppContext::new(config, backends)).await?;
    println!("inserted {inserted} todo(s)");
    Ok(())
}

async fn run(config: Config, bare: bool) -> Res {
    floodgate_core::metrics::install();
    let backends = connect(&config).await?;
    let ctx = AppContext::new(config.clone(), backends.clone());
    let todos = floodgate_todos::router(&ctx);
    let router = if bare {
        todos
    } else {
        let core = core_router(Readiness::new(backends.clone()), floodgate_todos::openapi());
        apply_middleware(core.merge(todos), config.body_limit, true)
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let shutdown = CancellationToken::new();
    floodgate_core::shutdown::Signals::install().cancel_on_signal(shutdown.clone());
    let workers_stop = CancellationToken::new();
    let workers = tokio::spawn(floodgate_todos::workers(ctx, workers_stop.clone()));
    eprintln!("todos_node: listening on {}", listener.local_addr()?);
    let opts = ServerOptions::from_config(&config);
    serve(listener, router, opts, shutdown).await;
    workers_stop.cancel();
    let _ = workers.await;
    backends.bus.flush().await?;
    backends.db.close().await;
    Ok(())
}
