//! What every request passes through: HTTP metrics by route template (never the raw path,
//! so label cardinality stays bounded), the dashboard's live counters, request ids, and the
//! body-size limit (413).
//!
//! This runs on the hot path (cached reads answer in a few microseconds), so it allocates
//! nothing in the common case: metric handles are cached per thread by (route, method,
//! status), and a request id is only minted when the client sent none and the request
//! failed (the only case we log).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONNECTION;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use metrics::{Counter, Histogram};
use tower_http::limit::RequestBodyLimitLayer;

use tracing::Instrument;

use crate::stats::STATS;
use crate::telemetry::trace;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `track`: record request metrics and live counters (`FLOODGATE_METRICS`).
pub fn apply(router: Router, body_limit: usize, track_requests: bool) -> Router {
    let router = if track_requests {
        router.layer(axum::middleware::from_fn(track))
    } else {
        router
    };
    router
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::map_response(close_after_413))
}

/// A 413 is sent before the oversized body was read, so the connection cannot carry
/// another request; saying so stops clients from reusing it and failing on the next one.
async fn close_after_413(mut resp: Response) -> Response {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

fn method_label(m: &Method) -> (u8, &'static str) {
    match *m {
        Method::GET => (0, "GET"),
        Method::POST => (1, "POST"),
        Method::PUT => (2, "PUT"),
        Method::DELETE => (3, "DELETE"),
        Method::HEAD => (4, "HEAD"),
        Method::OPTIONS => (5, "OPTIONS"),
        Method::PATCH => (6, "PATCH"),
        _ => (7, "OTHER"),
    }
}

fn new_request_id() -> HeaderValue {
    // A process-unique sequence is enough to correlate logs; clients may send their own.
    let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{n:016x}")).unwrap_or(HeaderValue::from_static("0"))
}

struct Handles {
    requests: Counter,
    duration: Histogram,
}

/// (method, status) → route template → handles.
type HandleCache = HashMap<(u8, u16), HashMap<Box<str>, Handles>>;

thread_local! {
    /// Registered once per thread and key, then reused without touching the registry.
    static HANDLES: RefCell<HandleCache> = RefCell::new(HashMap::new());
}

fn record(method: &Method, handler: &str, status: u16, seconds: f64) {
    let (m, method) = method_label(method);
    HANDLES.with(|cell| {
        let mut map = cell.borrow_mut();
        let routes = map.entry((m, status)).or_default();
        if let Some(h) = routes.get(handler) {
            h.requests.increment(1);
            h.duration.record(seconds);
            return;
        }
        let h = Handles {
            requests: metrics::counter!("http_requests_total", "method" => method, "handler" => handler.to_owned(), "status" => status.to_string()),
            duration: metrics::histogram!("http_request_duration_seconds", "method" => method, "handler" => handler.to_owned()),
        };
        h.requests.increment(1);
        h.duration.record(seconds);
        routes.insert(handler.into(), h);
    });
}

async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // MatchedPath holds an Arc<str>: cloning it is a reference-count bump.
    let handler = req.extensions().get::<MatchedPath>().cloned();
    let client_id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| v.len() <= 64)
        .cloned();
    STATS.request_started();
    let mut resp = if trace::enabled() {
        let route = handler.as_ref().map(|p| p.as_str()).unwrap_or("unmatched");
        let span = trace::request_span(&method, route, req.headers());
        let resp = next.run(req).instrument(span.clone()).await;
        span.record("http.response.status_code", resp.status().as_u16());
        resp
    } else {
        next.run(req).await
    };
    let status = resp.status();
    let elapsed = start.elapsed();
    STATS.request_finished(status.as_u16(), elapsed);
    let handler = handler.as_ref().map(|p| p.as_str()).unwrap_or("unmatched");
    let id = match client_id {
        Some(id) => Some(id),
        None if status.is_server_error() => Some(new_request_id()),
        None => None,
    };
    if let Some(id) = id {
        if status.is_server_error() {
            tracing::warn!(request_id = ?id, method = %method, handler, status = status.as_u16(), "request failed");
        }
        resp.headers_mut().insert(REQUEST_ID, id);
    }
    record(&method, handler, status.as_u16(), elapsed.as_secs_f64());
    resp
}
