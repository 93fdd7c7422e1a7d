//! HTTP: the shared routes (/health, /ready, /metrics, /docs), the middleware every route
//! gets, and the connection loop.

mod conn;
mod middleware;
mod ready;
pub mod reply;
pub mod server;
mod unmatched;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

pub use middleware::apply as apply_middleware;
pub use ready::Readiness;
pub use unmatched::answer_unmatched;

/// /health, /ready, /metrics, /docs and /openapi.json.
pub fn core_router(readiness: Readiness, openapi: OpenApi) -> Router {
    // Rendered once and shared: the document is large (hundreds of KB), and a copy per
    // request would let pipelining clients pile up copies.
    let doc = Bytes::from(openapi.to_json().unwrap_or_default());
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready::ready).with_state(readiness))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { ([(CONTENT_TYPE, "application/json")], doc) }
            }),
        )
        .merge(SwaggerUi::new("/docs").config(SwaggerConfig::from("/openapi.json")))
}

/// The process's own shared routes, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health, ready::ready, metrics), tags((name = "operations", description = "Health, readiness and metrics")))]
struct CoreDoc;

pub fn openapi() -> OpenApi {
    <CoreDoc as utoipa::OpenApi>::openapi()
}

/// Liveness: the process alone, no backend consulted.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Alive", body = String, example = "OK")))]
async fn health() -> &'static str {
    "OK"
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus metrics", body = String, content_type = "text/plain")))]
async fn metrics() -> axum::response::Response {
    match crate::metrics::render() {
        Some(text) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            "metrics are off (FLOODGATE_METRICS=off)\n",
        )
            .into_response(),
    }
}
