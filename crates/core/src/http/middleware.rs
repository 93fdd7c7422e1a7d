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
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::header::CONNECTION;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use metrics::{Counter, Histogram};
use tower_http::limit::RequestBodyLimitLayer;

use tower::{Layer, Service, ServiceBuilder};
use tracing::instrument::Instrumented;
use tracing::Instrument;

use crate::stats::STATS;
use crate::telemetry::trace;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Puts every route behind the body limit and, with `track_requests`, request metrics and
/// live counters (`FLOODGATE_METRICS`).
///
/// One `Router::layer` call with the whole stack: axum boxes each route once per call, and
/// every box is cloned again on every request.
pub fn apply(router: Router, body_limit: usize, track_requests: bool) -> Router {
    let stack = ServiceBuilder::new()
        .map_response(close_after_413 as fn(_) -> _)
        .layer(RequestBodyLimitLayer::new(body_limit))
        .option_layer(track_requests.then_some(TrackLayer));
    router.layer(stack)
}

/// A 413 is sent before the oversized body was read, so the connection cannot carry
/// another request; saying so stops clients from reusing it and failing on the next one.
fn close_after_413<B>(mut resp: http::Response<B>) -> http::Response<B> {
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

/// A fast non-cryptographic hasher: the keys are our own route templates, not input an
/// attacker chooses, and SipHash of the route was a visible share of a cached read.
type Fast = foldhash::fast::FixedState;

/// (method, status) → route template → handles.
type HandleCache = HashMap<(u8, u16), HashMap<Box<str>, Handles, Fast>, Fast>;

thread_local! {
    /// Registered once per thread and key, then reused without touching the registry.
    static HANDLES: RefCell<HandleCache> = RefCell::new(HashMap::default());
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

/// The request-tracking layer: a concrete service and future (axum's `from_fn` would box
/// both on every request).
#[derive(Clone, Copy)]
struct TrackLayer;

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

#[derive(Clone)]
struct Track<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Track<S>
where
    S: Service<http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
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
        // Span::none() when tracing is off: entering it is a no-op.
        let route = handler.as_ref().map(|p| p.as_str()).unwrap_or("unmatched");
        let span = trace::request_span(&method, route, req.headers());
        Tracked {
            inner: self.inner.call(req).instrument(span),
            start,
            method,
            handler,
            client_id,
        }
    }
}

pin_project_lite::pin_project! {
    struct Tracked<F> {
        #[pin]
        inner: Instrumented<F>,
        start: Instant,
        method: Method,
        handler: Option<MatchedPath>,
        client_id: Option<HeaderValue>,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut resp = match ready!(this.inner.as_mut().poll(cx)) {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let status = resp.status();
        let elapsed = this.start.elapsed();
        STATS.request_finished(status.as_u16(), elapsed);
        let handler = this
            .handler
            .as_ref()
            .map(|p| p.as_str())
            .unwrap_or("unmatched");
        let id = match this.client_id.take() {
            Some(id) => Some(id),
            None if status.is_server_error() => Some(new_request_id()),
            None => None,
        };
        if let Some(id) = id {
            if status.is_server_error() {
                tracing::warn!(request_id = ?id, method = %this.method, handler, status = status.as_u16(), "request failed");
            }
            resp.headers_mut().insert(REQUEST_ID, id);
        }
        if trace::enabled() {
            this.inner
                .span()
                .record("http.response.status_code", status.as_u16());
        }
        record(this.method, handler, status.as_u16(), elapsed.as_secs_f64());
        Poll::Ready(Ok(resp))
    }
}
