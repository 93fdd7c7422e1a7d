//! The three backends chosen by URL, connected once at start-up and shared by every service.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use floodgate_bus::SharedBus;
use floodgate_db::Db;
use floodgate_store::SharedStore;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("REDIS_URL: {0}")]
    Store(#[from] floodgate_store::StoreError),
    #[error("KAFKA_BROKERS: {0}")]
    Bus(#[from] floodgate_bus::BusError),
    #[error("DATABASE_URL: {0}")]
    Db(#[from] floodgate_db::DbError),
}

#[derive(Clone)]
pub struct Backends {
    pub store: SharedStore,
    pub bus: SharedBus,
    pub db: Db,
    /// Set once migrations have been applied; /ready waits for it.
    pub migrated: Arc<AtomicBool>,
}

impl Backends {
    /// Connects all three. Remote backends that are down do not fail this: calls fail fast
    /// until they come back, and /ready reports them.
    pub async fn connect(config: &Config) -> Result<Backends, BackendError> {
        let store = floodgate_store::connect(config.redis_url.as_deref()).await?;
        // A shared store decides which member reads which partition (the broker's group
        // coordinator is the least reliable part of some brokers); without one, one process
        // is all there is to share with, and the broker's groups do.
        let claims = (store.is_shared()).then(|| {
            Arc::new(floodgate_bus::claims::StoreClaims(store.clone()))
                as Arc<dyn floodgate_bus::claims::Claims>
        });
        let bus = floodgate_bus::connect(
            config.kafka_brokers.as_deref(),
            floodgate_bus::KafkaTuning {
                session: config.kafka_session_timeout,
                partitions: config.kafka_partitions,
                fetch_wait: config.kafka_fetch_wait,
            },
            claims,
        )
        .await?;
        let db = Db::connect(config.database_url.as_deref()).await?;
        Ok(Backends {
            store,
            bus,
            db,
            migrated: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Applies every service's migrations (`sets`), retrying every second while the
    /// database is unreachable.
    pub async fn migrate_until_done(
        &self,
        sets: &[&[floodgate_db::Migration]],
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            match self.db.migrate(sets).await {
                Ok(n) => {
                    tracing::info!(
                        applied = n,
                        db = self.db.kind_name(),
                        "database schema up to date"
                    );
                    self.migrated.store(true, Ordering::Release);
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "migrations failed; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }

    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }
}
