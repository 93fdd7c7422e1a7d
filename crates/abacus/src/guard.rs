//! What runs before every abacus handler: authentication, then the per-caller rate limit.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AbacusError;
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
                    return AbacusError::InvalidApiKey.into_response();
                }
            },
        };
        let Some(id) = id else {
            auth_failure("missing");
            return AbacusError::MissingApiKey.into_response();
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
    let verdict = match timed("rate_limit", limiter.check(&bucket)).await {
        Ok(v) => v,
        Err(e) => return AbacusError::from(e).into_response(),
    };
    let mut resp = if verdict.allowed() {
        next.run(req).await
    } else {
        rate_limit_hit();
        let retry_after_secs = verdict.retry_after_secs();
        AbacusError::RateLimited { retry_after_secs }.into_response()
    };
    verdict.apply(resp.headers_mut());
    resp
}
