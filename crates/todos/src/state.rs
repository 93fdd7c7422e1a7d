//! What every todo handler shares, built once per router.

use std::sync::Arc;
use std::time::Duration;

use floodgate_core::AppContext;
use floodgate_db::Db;
use floodgate_store::SharedStore;

use crate::auth::Verifier;
use crate::cache::ListCache;
use crate::keys::Keys;
use crate::outbox::Outbox;
use crate::publish::Publisher;

/// Behind one `Arc`: axum clones the state for every request, and the hot path should pay
/// one reference-count increment for it, not a clone of every field.
pub type AppState = Arc<Shared>;

pub struct Shared {
    pub cache: Arc<ListCache>,
    pub db: Db,
    pub verifier: Verifier,
    pub publisher: Publisher,
    pub max_limit: u64,
    /// Where Idempotency-Key records live, and for how long.
    pub store: SharedStore,
    pub idempotency_ttl: Duration,
}

impl Shared {
    /// Spawns the cache poller (and, with the in-process bus, the outbox committer), so it
    /// must be called inside a Tokio runtime.
    pub fn new(ctx: &AppContext) -> AppState {
        let cfg = ctx.config.settings::<crate::Settings>();
        let b = &ctx.backends;
        let keys = Keys::for_topic(&cfg.topic);
        let cache = Arc::new(ListCache::new(
            b.db.clone(),
            b.store.clone(),
            keys,
            cfg.cache_ttl,
        ));
        cache.start_poller(cfg.cache_staleness, b.migrated.clone());
        let publisher = if b.bus.in_process() {
            Publisher::Outbox(Outbox::start(
                b.db.clone(),
                b.bus.clone(),
                cfg.topic.clone(),
                b.migrated.clone(),
            ))
        } else {
            Publisher::Broker {
                bus: b.bus.clone(),
                topic: cfg.topic.clone(),
            }
        };
        Arc::new(Shared {
            cache,
            db: b.db.clone(),
            verifier: Verifier::new(cfg.jwt_secret.as_ref().map(|s| s.expose())),
            publisher,
            max_limit: cfg.max_limit,
            store: b.store.clone(),
            idempotency_ttl: ctx.config.idempotency_ttl,
        })
    }
}
