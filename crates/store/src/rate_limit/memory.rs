//! The memory store's half: a key's [`Log`] checked by [`Limit::check`] under its shard's
//! lock, on a microsecond clock of the store's own.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{refuse_all, Limit, LimitedApply, Log, RateDecision, RateLimit, RateLimiting};
use crate::memory::entry::{expiry, live_or_insert, Value};
use crate::{MemoryStore, StoreError, StoreResult};

/// The limiter's microsecond clock, counted from the store's creation.
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    fn micros(&self, now: Instant) -> u64 {
        u64::try_from(now.duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }
}

#[async_trait]
impl RateLimiting for MemoryStore {
    async fn rate_limit(&self, rate: RateLimit<'_>) -> StoreResult<RateDecision> {
        let key = rate.key;
        let Some(l) = Limit::new(rate.limit, rate.window) else {
            return Ok(refuse_all(rate.window));
        };
        let check = {
            let mut map = self.lock(key);
            // Read the clock under the lock, so entries are appended in ascending order and
            // the key's expiry agrees with the log exactly.
            let now = Instant::now();
            let now_us = self.rate_clock.micros(now);
            let entry = live_or_insert(&mut map, key, now, || Value::Log(Log::new()));
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

/// The two steps one after the other (the trait's default): one process sees them so.
impl LimitedApply for MemoryStore {}
