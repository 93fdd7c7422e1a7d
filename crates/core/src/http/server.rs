//! The connection loop. We drive hyper directly (rather than `axum::serve`) to get what a
//! public server needs: a cap on open connections, per-connection deadlines for headers,
//! bodies and idle keep-alive (see `conn`), bounded buffering per connection, hyper's
//! buffers only while a connection is in use (`conn::park`), and a graceful drain on
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::conn::{Conn, Drain, Limits, Watched};

/// Largest read or write buffer hyper keeps for one connection (a read never fills more
/// than one buffer). Request heads must fit in about this much, well above what real
/// clients send.
pub const MAX_CONN_BUFFER: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 20_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerOptions {
    pub fn from_config(c: &crate::Config) -> Self {
        ServerOptions {
            max_connections: c.max_connections,
            header_timeout: c.header_timeout,
            body_timeout: c.body_timeout,
            idle_timeout: c.idle_timeout,
            shutdown_timeout: c.shutdown_timeout,
        }
    }
}

/// How hyper serves each connection. hyper's own header timer also runs between keep-alive
/// requests (it would close idle connections at the header timeout), so the watchdog keeps
/// every deadline instead. Pipeline flushing stays off: with it hyper buffers the answers
/// to every request it has read, without limit, until the client's pipeline runs dry.
pub(super) fn http1_builder() -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .max_buf_size(MAX_CONN_BUFFER);
    http
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and
/// waits up to `shutdown_timeout` for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: ServerOptions,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let drain = Drain::new();
    let limits = Limits {
        header: opts.header_timeout,
        body: opts.body_timeout,
        idle: opts.idle_timeout,
    };
    let http = Arc::new(http1_builder());
    // Connections still open when the drain times out are aborted here, while the runtime
    // still runs, so what their requests hold (admission leases, ...) is given back on drop.
    // A JoinSet costs a little per connection and nothing per request or wake-up.
    let mut conns = JoinSet::new();
    let trimmer = tokio::spawn(super::conn::trim::run(shutdown.clone()));
    loop {
        // Wait for a free connection slot before accepting: excess clients queue in the
        // kernel backlog instead of exhausting file descriptors.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (conn, state) = Conn::new(stream, peer, router.clone(), http.clone(), drain.watch());
        let conn = Watched::new(conn, state, limits);
        // Forget the connections that ended since the last accept.
        while conns.try_join_next().is_some() {}
        conns.spawn(async move {
            let _permit = permit;
            conn.await;
            super::conn::trim::released();
        });
    }
    drop(listener);
    trimmer.abort();
    // Idle connections close at once (parked ones without waking hyper); the others after
    // the request they are serving.
    drain.start();
    let drained = async { while conns.join_next().await.is_some() {} };
    match tokio::time::timeout(opts.shutdown_timeout, drained).await {
        Ok(()) => tracing::info!("all connections drained"),
        Err(_) => {
            tracing::warn!("drain timed out; closing remaining connections");
            conns.shutdown().await;
        }
    }
}
