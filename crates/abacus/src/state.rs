//! What the abacus middleware and handlers of one node share: the store, the callers' keys,
//! the limiter and the idempotency rules, built once from the settings.

use std::sync::Arc;
use std::time::Duration;

use floodgate_core::AppContext;
use floodgate_store::SharedStore;

use crate::limit::Limiter;
use crate::{adopt, auth, error, Settings, RATE_PREFIX, SUM_KEY};

/// Shared by the middleware and handlers of one node.
pub(crate) struct Abacus {
    pub(crate) store: SharedStore,
    pub(crate) keys: auth::Keys,
    pub(crate) auth_enabled: bool,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) idempotency_required: bool,
    pub(crate) idempotency_ttl: Duration,
    /// Idempotency scope and rate-limit bucket of callers with no identity.
    pub(crate) anonymous: Arc<str>,
    /// Set once the seed's running sum has been adopted (or there was none).
    pub(crate) adopted: tokio::sync::OnceCell<()>,
}

impl Abacus {
    pub(crate) fn new(ctx: &AppContext) -> Self {
        let c = ctx.config.settings::<Settings>();
        let keys = auth::Keys::new(&c.api_keys);
        if c.auth_enabled && keys.is_empty() {
            tracing::warn!("ABACUS_AUTH_ENABLED is on but ABACUS_API_KEYS is empty: every /abacus request will be refused");
        }
        let limiter = c.rate_limit_enabled.then(|| {
            Limiter::new(
                ctx.backends.store.clone(),
                SUM_KEY,
                RATE_PREFIX,
                c.rate_limit_requests,
                c.rate_limit_window,
            )
        });
        Abacus {
            store: ctx.backends.store.clone(),
            keys,
            auth_enabled: c.auth_enabled,
            limiter,
            idempotency_required: c.idempotency_required,
            idempotency_ttl: ctx.config.idempotency_ttl,
            anonymous: Arc::from("anonymous"),
            adopted: tokio::sync::OnceCell::new(),
        }
    }

    /// Adopts the seed's sum before the first request touches ours (a failed try is
    /// repeated by the next request).
    pub(crate) async fn adopted(&self) -> Result<(), error::Error> {
        self.adopted
            .get_or_try_init(|| adopt::run(&self.store))
            .await
            .map(|_| ())
    }
}
