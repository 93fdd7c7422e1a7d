//! The bound on queued jobs and the undo of a half-made submission.
//!
//! Each queued job holds a lease in a store pool (`primes:queue:<topic>`), taken at submit
//! and given back by the worker that finishes the job. The pool's capacity is the bound, so
//! it holds across nodes (Redis), and a lease expires by itself: a job that never finishes
//! (lost with an embedded bus, or a worker that died after storing the result but before
//! giving it back) frees its slot after `Options::queue_lease`, never leaks it for good.
//! The bound is therefore advisory (a job queued longer than the lease stops counting),
//! which is what a backpressure signal needs, and it costs one store round trip per submit.

use std::time::Duration;

use floodgate_store::{Lease, SharedStore};
use uuid::Uuid;

use crate::error::Error;
use crate::status;

/// A taken queue slot plus the pending record, undone unless `keep` is called: on an error
/// path by `undo`, and if the request future is dropped half-way (client gone) by `Drop`.
pub struct Reservation {
    store: SharedStore,
    pool: String,
    holder: String,
    status_key: String,
    armed: bool,
}

impl Reservation {
    /// Takes a slot for `id`, or `QueueFull` when the backlog is at `capacity`.
    pub async fn take(
        store: &SharedStore,
        pool: &str,
        id: &Uuid,
        capacity: u32,
        lease: Duration,
    ) -> Result<Reservation, Error> {
        let holder = id.hyphenated().to_string();
        let slot = Lease {
            pool,
            holder: &holder,
            capacity,
            ttl: lease,
        };
        if !store.lease_acquire(slot).await? {
            return Err(Error::QueueFull);
        }
        Ok(Reservation {
            store: store.clone(),
            pool: pool.to_string(),
            holder,
            status_key: status::key(id),
            armed: true,
        })
    }

    /// The job was handed to the bus: the slot now belongs to whichever worker runs it.
    pub fn keep(mut self) {
        self.armed = false;
    }

    /// Removes the pending record and gives the slot back, before answering the error.
    pub async fn undo(mut self) {
        self.armed = false;
        cleanup(
            self.store.clone(),
            self.status_key.clone(),
            self.pool.clone(),
            self.holder.clone(),
        )
        .await;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let fut = cleanup(
            self.store.clone(),
            std::mem::take(&mut self.status_key),
            std::mem::take(&mut self.pool),
            std::mem::take(&mut self.holder),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(fut);
        }
    }
}

/// Best effort: if the store is down too, the record and the lease expire by themselves.
async fn cleanup(store: SharedStore, status_key: String, pool: String, holder: String) {
    if let Err(e) = store.del(&status_key).await {
        tracing::warn!(error = %e, key = %status_key, "cannot remove pending record");
    }
    release(&store, &pool, &holder).await;
}

/// Gives a job's slot back (a no-op when it was already given back or expired).
pub async fn release(store: &SharedStore, pool: &str, holder: &str) {
    if let Err(e) = store.lease_release(pool, holder).await {
        tracing::warn!(error = %e, "cannot release prime queue slot; it expires by itself");
    }
}
