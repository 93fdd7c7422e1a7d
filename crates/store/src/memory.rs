//! In-process store: a sharded map of entries with optional expiry. Every operation takes at
//! most two shard locks for a few map operations and never awaits while holding one, so
//! concurrent requests on different keys rarely contend.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};

mod entry;

use entry::{as_bytes, counter, expiry, insert, live, Entry, Map, Value};

use crate::rate_limit::{self, Limit};
use crate::{Adoption, CounterOp, IdemOutcome, RateDecision, Store, StoreError, StoreResult};

/// Power of two, so a shard is picked with a mask.
const SHARDS: usize = 64;
/// Every this many writes (a power of two), one shard is swept of expired entries.
const SWEEP_EVERY: u64 = 256;
/// Used when a lease TTL is too large to represent as an `Instant`.
const LONGEST_LEASE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Single-process [`Store`]; cheap to share behind an `Arc`.
pub struct MemoryStore {
    shards: Box<[Mutex<Map>]>,
    hasher: RandomState,
    writes: AtomicU64,
    /// Origin of the microsecond clock used by the rate limiter.
    epoch: Instant,
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
            epoch: Instant::now(),
        }
    }

    fn shard_of(&self, key: &str) -> usize {
        // Truncation is fine: only the low bits pick the shard.
        (self.hasher.hash_one(key) as usize) & (SHARDS - 1)
    }

    fn lock(&self, key: &str) -> MutexGuard<'_, Map> {
        self.shards[self.shard_of(key)].lock()
    }

    /// Counts a write and now and then sweeps one shard, so keys nobody reads again do not
    /// pile up. Called after the writer released its own lock; skips a busy shard.
    fn after_write(&self) {
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

    fn micros(&self, now: Instant) -> u64 {
        u64::try_from(now.duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// Entries stored, expired or not (for tests of the sweeper).
    #[cfg(test)]
    fn raw_len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// Holds the lock of one shard, or of two in a fixed order (no deadlock between
/// callers locking the same pair).
enum Pair<'a> {
    One(MutexGuard<'a, Map>),
    Two {
        first: MutexGuard<'a, Map>,
        second: MutexGuard<'a, Map>,
    },
}

impl Pair<'_> {
    fn first(&mut self) -> &mut Map {
        match self {
            Pair::One(m) => m,
            Pair::Two { first, .. } => first,
        }
    }
    fn second(&mut self) -> &mut Map {
        match self {
            Pair::One(m) => m,
            Pair::Two { second, .. } => second,
        }
    }
}

impl MemoryStore {
    fn lock_pair(&self, a: &str, b: &str) -> Pair<'_> {
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

    fn idem_locked(
        &self,
        counter_key: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<IdemOutcome> {
        let now = Instant::now();
        // first = counter's shard, second = record's shard (the same map when they share one).
        let mut pair = self.lock_pair(counter_key, idem_key);
        if let Some(e) = live(pair.second(), idem_key, now) {
            return match &e.value {
                Value::Record {
                    fingerprint: fp,
                    result,
                } if **fp == *fingerprint => Ok(IdemOutcome::Replayed(*result)),
                Value::Record { .. } => Ok(IdemOutcome::Mismatch),
                _ => Err(StoreError::WrongType(idem_key.to_string())),
            };
        }
        let (next, expires) = match op {
            CounterOp::Add(d) => {
                let (current, expires) = counter(pair.first(), counter_key, now)?;
                match current.checked_add(d) {
                    Some(n) => (n, expires),
                    None => return Ok(IdemOutcome::Overflow),
                }
            }
            // Like SET KEEPTTL: overwrites whatever is there, keeps its expiry.
            CounterOp::Set(v) => (
                v,
                live(pair.first(), counter_key, now).and_then(|e| e.expires),
            ),
        };
        insert(pair.first(), counter_key, Value::Int(next), expires);
        let record = Value::Record {
            fingerprint: fingerprint.into(),
            result: next,
        };
        insert(pair.second(), idem_key, record, expiry(now, Some(ttl)));
        Ok(IdemOutcome::Applied(next))
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn is_shared(&self) -> bool {
        false
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

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Bytes,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
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

    /// Key by key rather than in one step: an in-process store holds only what this process
    /// wrote, and its one caller runs the adoption once per process.
    async fn adopt_counter(
        &self,
        from: &str,
        seen: &[u8],
        to: &str,
        value: i64,
        marker: &str,
    ) -> StoreResult<Adoption> {
        let now = Instant::now();
        let read = |key: &str| -> StoreResult<Option<Bytes>> {
            let mut map = self.lock(key);
            live(&mut map, key, now)
                .map(|e| as_bytes(key, &e.value))
                .transpose()
        };
        if read(marker)?.is_some() {
            return Ok(Adoption::Done);
        }
        match read(from)? {
            None => return Ok(Adoption::Absent),
            Some(cur) if cur[..] != *seen => return Ok(Adoption::Changed),
            Some(_) => {}
        }
        {
            let mut map = self.lock(to);
            if live(&mut map, to, now).is_some() {
                return Ok(Adoption::TargetExists);
            }
            insert(&mut map, to, Value::Int(value), None);
        }
        let mut map = self.lock(marker);
        insert(
            &mut map,
            marker,
            Value::Bytes(Bytes::copy_from_slice(seen)),
            None,
        );
        Ok(Adoption::Moved)
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

    async fn idempotent_apply(
        &self,
        counter: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<IdemOutcome> {
        let outcome = self.idem_locked(counter, op, idem_key, fingerprint, ttl);
        self.after_write();
        outcome
    }

    async fn lease_acquire(
        &self,
        pool: &str,
        holder: &str,
        capacity: u32,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let acquired = {
            let now = Instant::now();
            let lease_end = now
                .checked_add(ttl)
                .or_else(|| now.checked_add(LONGEST_LEASE))
                .unwrap_or(now);
            let mut map = self.lock(pool);
            if live(&mut map, pool, now).is_none() {
                let empty = Value::Leases(HashMap::new());
                insert(&mut map, pool, empty, None);
            }
            let Some(entry) = map.get_mut(pool) else {
                return Err(StoreError::WrongType(pool.to_string()));
            };
            let Value::Leases(holders) = &mut entry.value else {
                return Err(StoreError::WrongType(pool.to_string()));
            };
            holders.retain(|_, e| *e > now);
            // A holder that already has a slot renews it rather than taking a second one.
            let fits = holders.contains_key(holder) || holders.len() < capacity as usize;
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
        let now = Instant::now();
        let mut map = self.lock(pool);
        match live(&mut map, pool, now) {
            None => Ok(0),
            Some(Entry {
                value: Value::Leases(holders),
                ..
            }) => {
                holders.retain(|_, e| *e > now);
                Ok(u32::try_from(holders.len()).unwrap_or(u32::MAX))
            }
            Some(_) => Err(StoreError::WrongType(pool.to_string())),
        }
    }

    async fn lease_holders(&self, pool: &str) -> StoreResult<Vec<String>> {
        let now = Instant::now();
        let mut map = self.lock(pool);
        match live(&mut map, pool, now) {
            None => Ok(Vec::new()),
            Some(Entry {
                value: Value::Leases(holders),
                ..
            }) => {
                holders.retain(|_, e| *e > now);
                let mut names: Vec<String> = holders.keys().map(|h| h.to_string()).collect();
                names.sort();
                Ok(names)
            }
            Some(_) => Err(StoreError::WrongType(pool.to_string())),
        }
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        let Some(l) = Limit::new(limit, window) else {
            return Ok(rate_limit::refuse_all(window));
        };
        let check = {
            let mut map = self.lock(key);
            // Read the clock under the lock, so entries are appended in ascending order and
            // the key's expiry agrees with the log exactly.
            let now = Instant::now();
            let now_us = self.micros(now);
            if live(&mut map, key, now).is_none() {
                insert(&mut map, key, Value::Log(VecDeque::new()), None);
            }
            let Some(entry) = map.get_mut(key) else {
                return Err(StoreError::WrongType(key.to_string()));
            };
            let Value::Log(log) = &mut entry.value else {
                return Err(StoreError::WrongType(key.to_string()));
            };
            let check = l.check(log, now_us);
            // An empty log means the same as none, so the key can go once the newest leaves.
            entry.expires = expiry(now, Some(Duration::from_micros(check.reset_us)));
            check
        };
        if check.allowed {
            self.after_write();
        }
        Ok(l.decision(check))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse_i64;

    #[test]
    fn parse_is_as_strict_as_redis() {
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"007"[..],
            b"+1",
            b" 1",
            b"1.0",
            b"",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

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

    #[tokio::test]
    async fn pair_lock_handles_same_and_different_shards() {
        let s = MemoryStore::new();
        // Find two keys on one shard and two on different shards.
        let base = s.shard_of("c0");
        let same = (1..)
            .map(|i| format!("r{i}"))
            .find(|k| s.shard_of(k) == base)
            .expect("some key shares the shard");
        let other = (1..)
            .map(|i| format!("r{i}"))
            .find(|k| s.shard_of(k) != base)
            .expect("some key is elsewhere");
        let ttl = Duration::from_secs(60);
        for rec in [same, other] {
            let first = s
                .idempotent_apply("c0", CounterOp::Add(2), &rec, "f", ttl)
                .await
                .expect("apply");
            let again = s
                .idempotent_apply("c0", CounterOp::Add(2), &rec, "f", ttl)
                .await
                .expect("replay");
            let IdemOutcome::Applied(v) = first else {
                panic!("expected Applied, got {first:?}");
            };
            assert_eq!(again, IdemOutcome::Replayed(v));
        }
        assert_eq!(s.get_i64("c0").await.expect("get"), 4);
    }
}
