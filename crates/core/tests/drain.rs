//! Graceful shutdown: a request in flight when shutdown starts still gets its answer, and
//! no new connection is accepted afterwards.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use floodgate_core::http::server::{serve, ServerOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_finishes_after_shutdown_begins() {
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            "done"
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        router,
        ServerOptions::default(),
        stop.clone(),
    ));

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
    let router = Router::new().route(
        "/stuck",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "late"
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let opts = ServerOptions {
        shutdown_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let server = tokio::spawn(serve(listener, router, opts, stop.clone()));
    let _stuck = tokio::spawn(async move { reqwest::get(format!("http://{addr}/stuck")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns once the drain deadline passes")
        .unwrap();
}
