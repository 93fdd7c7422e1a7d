//! The seed's metrics. Labels are static strings on the hot path: the endpoint is the route
//! template (never the raw path) and statuses are the handful this service sends.

use std::future::Future;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use floodgate_store::{StoreError, StoreResult};
use metrics::SharedString;

use crate::{NUMBER, SUM};

/// Records `abacus_request_total` and `abacus_request_duration_seconds` for every request
/// that reached an abacus route (including its auth and rate-limit refusals).
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let endpoint = match req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some(SUM) => SUM,
        Some(NUMBER) => NUMBER,
        _ => "unmatched",
    };
    let method = method_label(req.method());
    let resp = next.run(req).await;
    metrics::histogram!("abacus_request_duration_seconds", "endpoint" => endpoint, "method" => method)
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("abacus_request_total", "endpoint" => endpoint, "method" => method, "status" => status_label(resp.status()))
        .increment(1);
    resp
}

/// Runs one store call, recording `abacus_redis_operations_total{operation,result}` and
/// `abacus_redis_operation_duration_seconds{operation}` (named as in the seed whichever
/// store backs them).
pub async fn timed<T>(
    operation: &'static str,
    call: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let start = Instant::now();
    let result = call.await;
    metrics::histogram!("abacus_redis_operation_duration_seconds", "operation" => operation)
        .record(start.elapsed().as_secs_f64());
    let outcome = match &result {
        Ok(_) => "success",
        Err(StoreError::Overflow) => "overflow",
        Err(_) => "error",
    };
    metrics::counter!("abacus_redis_operations_total", "operation" => operation, "result" => outcome)
        .increment(1);
    result
}

pub fn auth_failure(reason: &'static str) {
    metrics::counter!("abacus_auth_failures_total", "reason" => reason).increment(1);
}

/// A repeated Idempotency-Key answered from its record (rare, so looked up each time).
pub fn replayed() {
    metrics::counter!("abacus_idempotent_replays_total").increment(1);
}

pub fn rate_limit_hit() {
    metrics::counter!("abacus_rate_limit_hits_total").increment(1);
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

fn status_label(s: StatusCode) -> SharedString {
    let known = match s.as_u16() {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        405 => "405",
        413 => "413",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => return SharedString::from(s.as_u16().to_string()),
    };
    SharedString::from(known)
}
