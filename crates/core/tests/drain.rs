//! Graceful shutdown: a request in flight when shutdown starts still gets its answer, and
//! no new connection is accepted afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use floodgate_core::http::server::{serve, ServerOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server on a free port whose one route, `path`, answers `reply` after `delay_ms`: its
/// address, what stops it, and its task.
async fn serving(
    path: &str,
    delay_ms: u64,
    reply: &'static str,
    opts: ServerOptions,
) -> (SocketAddr, CancellationToken, JoinHandle<()>) {
    let router = Router::new().route(
        path,
        get(move || async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            reply
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(listener, router, opts, stop.clone()));
    (addr, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_finishes_after_shutdown_begins() {
    let (addr, stop, server) = serving("/slow", 800, "done", ServerOptions::default()).await;

    let http = reqwest::Client::new();
    let slow = tokio::spawn({
        let http = http.clone();
        async move { http.get(format!("http://{addr}/slow")).send().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // New connections are refused once shutdown has begun...
    let fresh = reqwest::Client::new()
        .get(format!("http://{addr}/slow"))
        .send()
        .await;
    assert!(
        fresh.is_err(),
        "a new connection was served during shutdown"
    );
    // ...while the request already in flight completes normally.
    let resp = slow.await.unwrap().expect("in-flight request answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops after draining")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_gives_up_after_the_shutdown_timeout() {
    let opts = ServerOptions {
        shutdown_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let (addr, stop, server) = serving("/stuck", 60_000, "late", opts).await;
    let _stuck = tokio::spawn(async move { reqwest::get(format!("http://{addr}/stuck")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns once the drain deadline passes")
        .unwrap();
}
