//! Who is in the cluster: every node and worker renews a lease named after itself in one
//! store pool once a second (its heartbeat) and keeps its latest sample under a key with the
//! same expiry. A node that dies stops renewing and drops out within `EXPIRY`. Embedded, the
//! store is this process's own, so the cluster is the one process.

use std::time::Duration;

use bytes::Bytes;
use floodgate_store::{Lease, SharedStore, StoreResult};

const POOL: &str = "dashboard:members";
const SAMPLE_PREFIX: &str = "dashboard:member:";
/// A member missing this long (five heartbeats) is gone.
pub const EXPIRY: Duration = Duration::from_secs(5);
/// Far more members than any real cluster; the pool is a registry, not a limit.
const MEMBERS_AT_MOST: u32 = 4096;

fn sample_key(node: &str) -> String {
    format!("{SAMPLE_PREFIX}{node}")
}

/// Renews this node's membership and stores its latest sample.
pub async fn announce(store: &SharedStore, node: &str, sample: &str) -> StoreResult<()> {
    let value = Bytes::copy_from_slice(sample.as_bytes());
    store.set(&sample_key(node), value, Some(EXPIRY)).await?;
    store
        .lease_acquire(Lease {
            pool: POOL,
            holder: node,
            capacity: MEMBERS_AT_MOST,
            ttl: EXPIRY,
        })
        .await?;
    Ok(())
}

/// The latest sample of every live member, in member order.
pub async fn samples(store: &SharedStore) -> StoreResult<Vec<Bytes>> {
    let members = store.lease_holders(POOL).await?;
    let reads = members.iter().map(|m| {
        let key = sample_key(m);
        async move { store.get(&key).await }
    });
    let found = futures::future::try_join_all(reads).await?;
    Ok(found.into_iter().flatten().collect())
}

/// Leaves at once (a clean shutdown), instead of after `EXPIRY`.
pub async fn withdraw(store: &SharedStore, node: &str) {
    let _ = store.lease_release(POOL, node).await;
    let _ = store.del(&sample_key(node)).await;
}
