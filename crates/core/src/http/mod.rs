//! HTTP: the shared routes (/health, /ready, /metrics, /docs), the middleware every route
//! gets, and the connection loop.

mod middleware;
mod ready;
pub(crate) mod route_metrics;
pub mod server;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub use middleware::apply as apply_middleware;
pub use ready::Readiness;

/// /health, /ready, /metrics, /docs and /openapi.json.
pub fn core_router(readiness: Readiness, openapi: OpenApi) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready::ready).with_state(readiness))
        .route("/metrics", get(metrics))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
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
