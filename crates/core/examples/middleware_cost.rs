//! Sends N requests through the real middleware stack in one thread, with request tracking
//! on or off, so callgrind can count what tracking adds per request without the noise of a
//! server's timers and sockets (`scripts/count-metrics-cost` runs it).
//!
//!     middleware_cost REQUESTS on|off

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use floodgate_core::http::apply_middleware;
use tower::{Service, ServiceExt};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let track = args.next().as_deref() != Some("off");
    if track {
        floodgate_core::metrics::install();
    }
    // A fixed body, as a cached read answers with pre-encoded bytes.
    let body = bytes::Bytes::from(vec![b'x'; 2343]);
    let routes = Router::new()
        .route("/todos", get(move || std::future::ready(body.clone())))
        .route("/todos/{id}", get(|| async { "one" }));
    let mut service = apply_middleware(routes, 64 * 1024, track).into_service();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for _ in 0..n {
            let req = Request::get("/todos?limit=10")
                .header("host", "127.0.0.1")
                .body(Body::empty())
                .expect("request");
            let ready = service.ready().await.expect("ready");
            let resp = ready.call(req).await.expect("infallible");
            assert_eq!(resp.status(), 200);
        }
    });
}
