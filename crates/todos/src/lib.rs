//! The todos service (SPEC section 4): lists served from a near-cache of pre-encoded bytes,
//! writes queued durably over the bus and applied by workers in idempotent batches.
//!
//! Wiring: [`router`] for HTTP, [`workers`] for the appliers, [`openapi`] for docs,
//! [`mint_token`] for `floodgate token`, [`seed`] for `floodgate seed todos`; its settings
//! are in [`settings`].

mod api;
mod apply;
mod auth;
mod cache;
mod error;
mod idempotency;
mod json;
mod keys;
mod model;
mod outbox;
mod panel;
mod params;
mod publish;
mod repo;
mod schema;
pub mod settings;
mod stamps;
mod state;
mod version;
mod worker;

use axum::routing::get;
use axum::Router;
use floodgate_core::AppContext;
use floodgate_db::{Db, DbError};
use tokio_util::sync::CancellationToken;

pub use auth::{mint_token, TokenError};
pub use error::Error;
pub use keys::Keys;
pub use model::{Action, Command, Todo};
pub use panel::panel;
pub use repo::seed_id;
pub use schema::MIGRATIONS;
pub use settings::Settings;
use version::Version;
pub use version::VersionError;
pub use worker::{group_for, GROUP};

/// The todo routes with their state applied. Must be called inside a Tokio runtime (it
/// starts the cache's version poller and, in embedded mode, the outbox committer, which
/// both stop once the router is dropped). Install the metrics recorder first
/// (`floodgate_core::metrics::install`) so the cache counters are live.
pub fn router(ctx: &AppContext) -> Router {
    let state = state::Shared::new(ctx);
    Router::new()
        .route("/todos", get(api::list).post(api::create))
        .route(
            "/todos/{id}",
            get(api::one).put(api::update).delete(api::delete),
        )
        .with_state(state)
}

/// The OpenAPI description of the todo routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::openapi()
}

/// Runs the command appliers until `stop` is cancelled; the batch in progress is applied
/// and committed before it returns.
pub async fn workers(ctx: AppContext, stop: CancellationToken) {
    worker::run(ctx, stop).await
}

/// Inserts `count` seed todos (`Todo N` / `Description for todo N`, user `seed-user`) with
/// deterministic ids; existing ones are left alone. Returns how many were inserted.
/// Running servers see them after the next [`invalidate`] (or applied write).
pub async fn seed(db: &Db, count: u64) -> Result<u64, DbError> {
    repo::seed(db, count).await
}

/// The shared list version (what every node's cache poller reads).
pub async fn list_version(ctx: &AppContext) -> Result<u64, VersionError> {
    version_of(ctx).read().await
}

/// Bumps the shared list version so every node refills within CACHE_STALENESS_MS (after
/// seeding, say); the version lives where every node sees it (see `version.rs`).
pub async fn invalidate(ctx: &AppContext) -> Result<(), VersionError> {
    version_of(ctx).bump().await
}

fn version_of(ctx: &AppContext) -> Version {
    let b = &ctx.backends;
    Version::new(
        &b.store,
        &b.db,
        &Keys::for_topic(&ctx.config.settings::<Settings>().topic),
    )
}
