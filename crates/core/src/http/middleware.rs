//! What every request passes through: HTTP metrics by route template (never the raw path,
//! so label cardinality stays bounded), the dashboard's live counters, request ids, and the
//! body-size limit (413).
//!
//! This runs on the hot path (cached reads answer in a few microseconds), so it allocates
//! nothing in the common case: the route's counters are found through a per-thread cache
//! (`metrics::routes`), and a request id is only minted when the client sent none and the
//! request failed (the only case we log).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::header::CONNECTION;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

use tower::{Layer, Service, ServiceBuilder};
use tracing::Span;

use crate::metrics::routes::{self as route_metrics, RouteMetrics};
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

/// The caller's `x-request-id`, if it sent a usable one. A scan of the few request headers
/// is cheaper than hashing a custom header name for a map lookup.
fn client_request_id(headers: &http::HeaderMap) -> Option<HeaderValue> {
    headers
        .iter()
        .find(|(name, _)| *name == REQUEST_ID)
        .map(|(_, v)| v)
        .filter(|v| v.len() <= 64)
        .cloned()
}

fn new_request_id() -> HeaderValue {
    // A process-unique sequence is enough to correlate logs; clients may send their own.
    let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{n:016x}")).unwrap_or(HeaderValue::from_static("0"))
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
        let route = route_metrics::lookup(req.extensions().get::<MatchedPath>(), req.method());
        let client_id = client_request_id(req.headers());
        STATS.request_started();
        // Tracing off costs nothing per poll: no span to enter.
        let span = trace::enabled().then(|| {
            Box::new(trace::request_span(
                req.method(),
                &route.handler,
                req.headers(),
            ))
        });
        Tracked {
            inner: self.inner.call(req),
            span,
            start,
            route,
            client_id,
        }
    }
}

pin_project_lite::pin_project! {
    struct Tracked<F> {
        #[pin]
        inner: F,
        // Boxed: it is only there when tracing is on, and the future moves several times.
        span: Option<Box<Span>>,
        start: Instant,
        route: &'static RouteMetrics,
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
        let entered = this.span.as_deref().map(Span::enter);
        let polled = ready!(this.inner.as_mut().poll(cx));
        drop(entered);
        let mut resp = match polled {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let status = resp.status();
        let elapsed = this.start.elapsed();
        STATS.request_finished(status.as_u16(), elapsed);
        // A 405 matched a path but no route: it counts with the unknown paths.
        if status == StatusCode::METHOD_NOT_ALLOWED {
            *this.route = route_metrics::unmatched(this.route.method);
        }
        this.route.record(status.as_u16(), elapsed);
        let id = match this.client_id.take() {
            Some(id) => Some(id),
            None if status.is_server_error() => Some(new_request_id()),
            None => None,
        };
        if let Some(id) = id {
            if status.is_server_error() {
                tracing::warn!(request_id = ?id, method = this.route.method, handler = &*this.route.handler, status = status.as_u16(), "request failed");
            }
            resp.headers_mut().insert(REQUEST_ID, id);
        }
        if let Some(span) = this.span {
            span.record("http.response.status_code", status.as_u16());
        }
        Poll::Ready(Ok(resp))
    }
}
