//! In-process store: a sharded map of entries with optional expiry. Every operation takes at
//! most two shard locks for a few map operations and never awaits while holding one, so
//! concurrent requests on different keys rarely contend. This file holds the store and its
//! [`Kv`] core; each capability's half is in its own folder (`idempotency/memory.rs`, ...).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};

pub(crate) mod entry;

use entry::{as_bytes, counter, expiry, insert, live, Map, Value};

use crate::rate_limit::memory::Clock;
use crate::{Backend, Kv, StoreError, StoreResult, Swap};

/// Power of two, so a shard is picked with a mask.
const SHARDS: usize = 64;
/// Every this many writes (a power of two), one shard is swept of expired entries.
const SWEEP_EVERY: u64 = 256;

/// Single-process [`Store`](crate::Store); cheap to share behind an `Arc`.
pub struct MemoryStore {
    shards: Box<[Mutex<Map>]>,
    hasher: RandomState,
    writes: AtomicU64,
    /// The rate limiter's microsecond clock.
    pub(crate) rate_clock: Clock,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Map::new())).collect(),
            hasher: RandomState::new(),
            writes: AtomicU64::new(0),
            rate_clock: Clock::new(),
        }
    }

    pub(crate) fn shard_of(&self, key: &str) -> usize {
        // Truncation is fine: only the low bits pick the shard.
        (self.hasher.hash_one(key) as usize) & (SHARDS - 1)
    }

    pub(crate) fn lock(&self, key: &str) -> MutexGuard<'_, Map> {
        self.shards[self.shard_of(key)].lock()
    }

    /// Counts a write and now and then sweeps one shard, so keys nobody reads again do not
    /// pile up. Called after the writer released its own lock; skips a busy shard.
    pub(crate) fn after_write(&self) {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        if n & (SWEEP_EVERY - 1) != 0 {
            return;
        }
        let idx = ((n / SWEEP_EVERY) as usize) & (SHARDS - 1);
        if let Some(mut map) = self.shards[idx].try_lock() {
            let now = Instant::now();
            map.retain(|_, e| e.live(now));
        }
    }

    /// Entries stored, expired or not (for tests of the sweeper).
    #[cfg(test)]
    fn raw_len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// Holds the lock of one shard, or of two in a fixed order (no deadlock between
/// callers locking the same pair).
pub(crate) enum Pair<'a> {
    One(MutexGuard<'a, Map>),
    Two {
        first: MutexGuard<'a, Map>,
        second: MutexGuard<'a, Map>,
    },
}

impl Pair<'_> {
    pub fn first(&mut self) -> &mut Map {
        match self {
            Pair::One(m) => m,
            Pair::Two { first, .. } => first,
        }
    }
    pub fn second(&mut self) -> &mut Map {
        match self {
            Pair::One(m) => m,
            Pair::Two { second, .. } => second,
        }
    }
}

impl MemoryStore {
    pub(crate) fn lock_pair(&self, a: &str, b: &str) -> Pair<'_> {
        let (ia, ib) = (self.shard_of(a), self.shard_of(b));
        if ia == ib {
            return Pair::One(self.shards[ia].lock());
        }
        if ia < ib {
            let first = self.shards[ia].lock();
            let second = self.shards[ib].lock();
            Pair::Two { first, second }
        } else {
            let second = self.shards[ib].lock();
            let first = self.shards[ia].lock();
            Pair::Two { first, second }
        }
    }
}

#[async_trait]
impl Kv for MemoryStore {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        let mut map = self.lock(key);
        live(&mut map, key, Instant::now())
            .map(|e| as_bytes(key, &e.value))
            .transpose()
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<()> {
        {
            let now = Instant::now();
            let mut map = self.lock(key);
            insert(&mut map, key, Value::Bytes(value), expiry(now, ttl));
        }
        self.after_write();
        Ok(())
    }

    async fn set_nx(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<bool> {
        let set = {
            let now = Instant::now();
            let mut map = self.lock(key);
            if live(&mut map, key, now).is_some() {
                false
            } else {
                insert(&mut map, key, Value::Bytes(value), expiry(now, ttl));
                true
            }
        };
        self.after_write();
        Ok(set)
    }

    async fn compare_and_set(&self, key: &str, swap: Swap<'_>) -> StoreResult<bool> {
        let Swap { expected, new, ttl } = swap;
        let swapped = {
            let now = Instant::now();
            let mut map = self.lock(key);
            let current = live(&mut map, key, now)
                .map(|e| as_bytes(key, &e.value))
                .transpose()?;
            if current.as_deref() == expected {
                insert(&mut map, key, Value::Bytes(new), expiry(now, ttl));
                true
            } else {
                false
            }
        };
        self.after_write();
        Ok(swapped)
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        let mut map = self.lock(key);
        let now = Instant::now();
        Ok(map.remove(key).is_some_and(|e| e.live(now)))
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let next = {
            let now = Instant::now();
            let mut map = self.lock(key);
            let (current, expires) = counter(&mut map, key, now)?;
            let next = current.checked_add(delta).ok_or(StoreError::Overflow)?;
            insert(&mut map, key, Value::Int(next), expires);
            next
        };
        self.after_write();
        Ok(next)
    }

    async fn get_i64(&self, key: &str) -> StoreResult<i64> {
        let mut map = self.lock(key);
        Ok(counter(&mut map, key, Instant::now())?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sweeper_drops_expired_keys_nobody_reads() {
        let s = MemoryStore::new();
        for i in 0..2_000 {
            let ttl = Some(Duration::from_millis(1));
            s.set(&format!("old{i}"), Bytes::from_static(b"x"), ttl)
                .await
                .expect("memory set");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Enough writes to visit every shard once.
        for i in 0..(SWEEP_EVERY as usize * SHARDS) {
            s.set("churn", Bytes::from(i.to_string()), None)
                .await
                .expect("memory set");
        }
        assert!(s.raw_len() < 100, "{} entries left", s.raw_len());
    }
}
