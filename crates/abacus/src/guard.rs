//! What runs before every abacus handler: authentication, then the per-caller rate limit.
//!
//! The writes (POST /abacus/number, PUT /abacus/sum) leave the limit to their handler, so a
//! keyed write checks it in the same store call as its idempotent apply (one round trip,
//! `Limiter::limited_apply`). The answers stay those of "limit first, then the handler": the
//! handler reports what the limiter said in a [`Counted`] on its response; one that answered
//! before reaching the store (a bad body or Idempotency-Key) has not been counted, so the
//! guard counts it afterwards and turns it into a 429 when over the limit (the second store
//! trip is on those error paths only). An unkeyed write asks the limiter before it writes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::limit::Verdict;
use crate::telemetry::{auth_failure, rate_limit_hit, timed};
use crate::Abacus;

const API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Who is calling, as the rest of the request sees it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Scopes idempotency records: the API key's hash, or one shared scope without auth.
    pub scope: Arc<str>,
    /// Rate-limit bucket: the API key's hash, or the client address without auth.
    pub bucket: Arc<str>,
}

/// Checks `X-API-Key` (when auth is on) and attaches the [`Caller`].
pub async fn authenticate(
    State(app): State<Arc<Abacus>>,
    mut req: Request,
    next: Next,
) -> Response {
    let caller = if app.auth_enabled {
        let id = match req.headers().get(&API_KEY) {
            None => None,
            Some(v) if v.is_empty() => None,
            Some(v) => match app.keys.find(v.as_bytes()) {
                Some(id) => Some(id),
                None => {
                    auth_failure("invalid");
                    return Error::InvalidApiKey.into_response();
                }
            },
        };
        let Some(id) = id else {
            auth_failure("missing");
            return Error::MissingApiKey.into_response();
        };
        Caller {
            scope: id.clone(),
            bucket: id,
        }
    } else {
        let bucket = match req.extensions().get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(peer)) => Arc::from(peer.ip().to_string()),
            None => app.anonymous.clone(),
        };
        Caller {
            scope: app.anonymous.clone(),
            bucket,
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// What a write handler did about the rate limit the guard left to it, carried on its
/// response (an extension, removed by the guard).
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    /// The limiter decided (a refusal is already the handler's 429).
    Decided(Verdict),
    /// The store call that held the check failed: whether it counted is unknown, so it is
    /// not asked again (the answer is the handler's 503).
    Unknown,
}

/// Routes whose handler checks the limit itself: the writes.
fn deferred(method: &Method) -> bool {
    method == Method::POST || method == Method::PUT
}

/// Applies the caller's rate limit (when enabled) and adds the `RateLimit-*` headers to the
/// response, refused or not.
pub async fn rate_limit(State(app): State<Arc<Abacus>>, req: Request, next: Next) -> Response {
    let Some(limiter) = &app.limiter else {
        return next.run(req).await;
    };
    let bucket = match req.extensions().get::<Caller>() {
        Some(c) => c.bucket.clone(),
        None => app.anonymous.clone(),
    };
    let (mut resp, verdict) = if deferred(req.method()) {
        let mut resp = next.run(req).await;
        match resp.extensions_mut().remove::<Counted>() {
            Some(Counted::Decided(v)) => (resp, v),
            Some(Counted::Unknown) => return resp,
            // Answered before its store call: counted now, as if the limit had run first.
            None => match timed("rate_limit", limiter.check(&bucket)).await {
                Ok(v) if v.allowed() => (resp, v),
                Ok(v) => (refused(v), v),
                Err(e) => return Error::from(e).into_response(),
            },
        }
    } else {
        match timed("rate_limit", limiter.check(&bucket)).await {
            Ok(v) if v.allowed() => (next.run(req).await, v),
            Ok(v) => (refused(v), v),
            Err(e) => return Error::from(e).into_response(),
        }
    };
    if !verdict.allowed() {
        rate_limit_hit();
    }
    verdict.apply(resp.headers_mut());
    resp
}

/// The 429 for a refused request.
fn refused(verdict: Verdict) -> Response {
    rate_limited(verdict).into_response()
}

/// The error of a refused request.
pub fn rate_limited(verdict: Verdict) -> Error {
    Error::RateLimited {
        retry_after_secs: verdict.retry_after_secs(),
    }
}
