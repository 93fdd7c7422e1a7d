//! The memory store's half: a pool is a map of holders to the instant their lease ends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Lease, Leases};
use crate::memory::entry::{live, live_or_insert, Entry, Map, Value};
use crate::{MemoryStore, StoreError, StoreResult};

/// Used when a lease TTL is too large to represent as an `Instant`.
const LONGEST_LEASE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The holders of a pool and when each lease ends.
pub(crate) type Pool = HashMap<Box<str>, Instant>;

/// The live holders of `pool` (expired leases dropped), or None when there is no pool.
fn holders<'a>(map: &'a mut Map, pool: &str, now: Instant) -> StoreResult<Option<&'a Pool>> {
    match live(map, pool, now) {
        None => Ok(None),
        Some(Entry {
            value: Value::Leases(holders),
            ..
        }) => {
            holders.retain(|_, e| *e > now);
            Ok(Some(holders))
        }
        Some(_) => Err(StoreError::WrongType(pool.to_string())),
    }
}

#[async_trait]
impl Leases for MemoryStore {
    async fn lease_acquire(&self, lease: Lease<'_>) -> StoreResult<bool> {
        let (pool, holder) = (lease.pool, lease.holder);
        let acquired = {
            let now = Instant::now();
            let lease_end = now
                .checked_add(lease.ttl)
                .or_else(|| now.checked_add(LONGEST_LEASE))
                .unwrap_or(now);
            let mut map = self.lock(pool);
            let entry = live_or_insert(&mut map, pool, now, || Value::Leases(Pool::new()));
            let Value::Leases(holders) = &mut entry.value else {
                return Err(StoreError::WrongType(pool.to_string()));
            };
            holders.retain(|_, e| *e > now);
            // A holder that already has a slot renews it rather than taking a second one.
            let fits = holders.contains_key(holder) || holders.len() < lease.capacity as usize;
            if fits {
                holders.insert(holder.into(), lease_end);
            }
            // The pool lives as long as its longest lease, so the sweeper can drop it.
            entry.expires = Some(holders.values().max().copied().unwrap_or(now));
            fits
        };
        self.after_write();
        Ok(acquired)
    }

    async fn lease_release(&self, pool: &str, holder: &str) -> StoreResult<()> {
        let now = Instant::now();
        let mut map = self.lock(pool);
        match live(&mut map, pool, now) {
            None => Ok(()),
            Some(Entry {
                value: Value::Leases(holders),
                ..
            }) => {
                holders.remove(holder);
                Ok(())
            }
            Some(_) => Err(StoreError::WrongType(pool.to_string())),
        }
    }

    async fn lease_count(&self, pool: &str) -> StoreResult<u32> {
        let mut map = self.lock(pool);
        let n = holders(&mut map, pool, Instant::now())?.map_or(0, |h| h.len());
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn lease_holders(&self, pool: &str) -> StoreResult<Vec<String>> {
        let mut map = self.lock(pool);
        let mut names: Vec<String> = holders(&mut map, pool, Instant::now())?
            .map(|h| h.keys().map(|h| h.to_string()).collect())
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }
}
