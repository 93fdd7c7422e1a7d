//! The in-flight limit: at most `capacity` requests at once across every node. With a shared
//! store each request holds a lease (one atomic script to take it, one to give it back) that
//! expires by itself, so a node killed with -9 cannot keep its slots for longer than the
//! lease. With the in-memory store the limit is one process's, kept in a single atomic.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_core::retry::Backoff;
use floodgate_core::stats::STATS;
use floodgate_store::{Lease, SharedStore, StoreError};
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("capacity reached")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Admission {
    store: SharedStore,
    pool: String,
    capacity: u32,
    lease_ttl: Duration,
    wait: Duration,
    /// Used instead of leases when the store is this process's own memory.
    local: Option<AtomicU32>,
    /// `admission_in_flight{pool}`: slots this node holds now.
    held: metrics::Gauge,
    /// Releases running in the background (dropped permits), for shutdown to wait on.
    releases: TaskTracker,
}

/// A held slot; dropping it gives the slot back.
pub struct Permit {
    admission: Arc<Admission>,
    holder: Option<String>,
}

impl Admission {
    pub fn new(
        store: SharedStore,
        pool: &str,
        capacity: u32,
        lease_ttl: Duration,
        wait: Duration,
    ) -> Self {
        let local = (!store.is_shared()).then(|| AtomicU32::new(0));
        Admission {
            store,
            held: metrics::gauge!("admission_in_flight", "pool" => pool.to_string()),
            pool: pool.to_string(),
            capacity,
            lease_ttl,
            wait,
            local,
            releases: TaskTracker::new(),
        }
    }

    /// Waits (up to `limit`) for the releases of dropped permits, so a node shutting down
    /// gives its slots back instead of leaving them to expire.
    pub async fn settle(&self, limit: Duration) {
        self.releases.close();
        if tokio::time::timeout(limit, self.releases.wait())
            .await
            .is_err()
        {
            tracing::warn!(pool = %self.pool, "admission leases not all given back; they will expire");
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Takes a slot, waiting up to `ADMISSION_WAIT_MS` for one when the pool is full.
    pub async fn acquire(self: &Arc<Self>) -> Result<Permit, AdmissionError> {
        let deadline = Instant::now() + self.wait;
        let mut backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(50));
        loop {
            match self.try_acquire().await {
                Ok(permit) => {
                    self.held.increment(1.0);
                    return Ok(permit);
                }
                Err(AdmissionError::Full) if Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(backoff.step().min(left)).await;
                }
                Err(AdmissionError::Full) => {
                    metrics::counter!("admission_rejected_total", "pool" => self.pool.clone())
                        .increment(1);
                    STATS.rejected();
                    return Err(AdmissionError::Full);
                }
                other => return other,
            }
        }
    }

    async fn try_acquire(self: &Arc<Self>) -> Result<Permit, AdmissionError> {
        if let Some(local) = &self.local {
            let taken = local.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
            return match taken {
                Ok(_) => Ok(Permit {
                    admission: self.clone(),
                    holder: None,
                }),
                Err(_) => Err(AdmissionError::Full),
            };
        }
        let holder = uuid::Uuid::new_v4().to_string();
        if self
            .store
            .lease_acquire(Lease {
                pool: &self.pool,
                holder: &holder,
                capacity: self.capacity,
                ttl: self.lease_ttl,
            })
            .await?
        {
            Ok(Permit {
                admission: self.clone(),
                holder: Some(holder),
            })
        } else {
            Err(AdmissionError::Full)
        }
    }

    /// Slots in use right now (cluster-wide with a shared store).
    pub async fn in_use(&self) -> Result<u32, StoreError> {
        match &self.local {
            Some(n) => Ok(n.load(Ordering::Acquire)),
            None => self.store.lease_count(&self.pool).await,
        }
    }
}

impl Permit {
    /// Gives the slot back now (one round trip with a shared store), so the caller's next
    /// request finds it free; dropping instead releases in the background.
    pub async fn release(mut self) {
        if let (None, Some(holder)) = (&self.admission.local, self.holder.take()) {
            let a = &self.admission;
            if let Err(e) = a.store.lease_release(&a.pool, &holder).await {
                tracing::debug!(error = %e, "lease release failed; it will expire");
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let a = &self.admission;
        a.held.decrement(1.0);
        match (&a.local, self.holder.take()) {
            (Some(n), _) => {
                n.fetch_sub(1, Ordering::AcqRel);
            }
            (None, Some(holder)) => {
                let (store, pool) = (a.store.clone(), a.pool.clone());
                // Release off the request path; if it fails, the lease still expires.
                a.releases.spawn(async move {
                    if let Err(e) = store.lease_release(&pool, &holder).await {
                        tracing::debug!(error = %e, "lease release failed; it will expire");
                    }
                });
            }
            (None, None) => {}
        }
    }
}
