//! Abacus (SPEC section 5, seed 004): a running sum shared by every node, behind API keys,
//! Idempotency-Key and a cluster-wide sliding-window rate limit.
//!
//! Request path: `telemetry::track` (metrics) → `guard::authenticate` → `guard::rate_limit`
//! → a handler, which makes one atomic store call. For the writes (POST /abacus/number, PUT
//! /abacus/sum) the guard leaves the limit to the handler: a keyed write checks it inside
//! that one call (`Store::limited_apply`), so it costs one store round trip; see guard.rs.
//! Its settings are in [`settings`].

mod adopt;
mod api;
mod auth;
mod body;
mod error;
mod guard;
mod idempotency;
pub mod limit;
mod model;
mod panel;
pub mod settings;
mod state;
mod telemetry;

use std::sync::Arc;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use floodgate_core::AppContext;

pub use api::openapi;
pub use error::Error;
pub use limit::{Limiter, Verdict};
pub use panel::panel;
pub use settings::Settings;
pub(crate) use state::Abacus;

pub(crate) const SUM: &str = "/abacus/sum";
pub(crate) const NUMBER: &str = "/abacus/number";
/// The sum itself, a decimal integer (INCRBY-compatible on Redis).
pub(crate) const SUM_KEY: &str = "abacus:sum";
pub(crate) const RATE_PREFIX: &str = "abacus:rl:";

/// `GET /abacus/sum`, `POST /abacus/number` and `PUT /abacus/sum`, state applied. Without
/// auth the rate limit is per client address, read from `ConnectInfo<SocketAddr>` when the
/// server provides it (else one shared bucket).
pub fn router(ctx: &AppContext) -> Router {
    let app = Arc::new(Abacus::new(ctx));
    Router::new()
        .route(SUM, get(api::get_sum).put(api::reset_sum))
        .route(NUMBER, post(api::add_number))
        // Last added runs first: metrics see every outcome, auth runs before the limit.
        // Route layers only: paths and methods no route takes never reach them.
        .route_layer(from_fn_with_state(app.clone(), guard::rate_limit))
        .route_layer(from_fn_with_state(app.clone(), guard::authenticate))
        .route_layer(from_fn(telemetry::track))
        .with_state(app)
}
