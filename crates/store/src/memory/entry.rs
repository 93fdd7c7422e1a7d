//! What the memory store keeps per key, and the small helpers every operation shares.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::idempotency::memory::Record;
use crate::lease::memory::Pool;
use crate::rate_limit::Log;
use crate::text::parse_i64;
use crate::{StoreError, StoreResult};

pub(crate) type Map = HashMap<Box<str>, Entry>;

/// What a key holds. Counters are integers but read back as decimal text, like Redis. The
/// capabilities' own kinds are defined in their folders.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Bytes(Bytes),
    Int(i64),
    /// An idempotency record (`idempotency/memory.rs`).
    Record(Record),
    /// A lease pool (`lease/memory.rs`).
    Leases(Pool),
    /// A rate-limit log (`rate_limit/memory.rs`).
    Log(Log),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub value: Value,
    pub expires: Option<Instant>,
}

impl Entry {
    pub fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// The live entry at `key`, dropping it when expired.
pub(crate) fn live<'a>(map: &'a mut Map, key: &str, now: Instant) -> Option<&'a mut Entry> {
    if map.get(key).is_some_and(|e| !e.live(now)) {
        map.remove(key);
    }
    map.get_mut(key)
}

/// The live entry at `key`, first set to `empty()` (kept forever) when there is none.
pub(crate) fn live_or_insert<'a>(
    map: &'a mut Map,
    key: &str,
    now: Instant,
    empty: impl FnOnce() -> Value,
) -> &'a mut Entry {
    if !map.get(key).is_some_and(|e| e.live(now)) {
        insert(map, key, empty(), None);
    }
    map.get_mut(key)
        .expect("the entry is there: it was live or was just inserted")
}

pub(crate) fn expiry(now: Instant, ttl: Option<Duration>) -> Option<Instant> {
    // A TTL too large to represent means "forever".
    ttl.and_then(|t| now.checked_add(t))
}

pub(crate) fn insert(map: &mut Map, key: &str, value: Value, expires: Option<Instant>) {
    map.insert(key.into(), Entry { value, expires });
}

/// Bytes as Redis would return them from GET.
pub(crate) fn as_bytes(key: &str, value: &Value) -> StoreResult<Bytes> {
    match value {
        Value::Bytes(b) => Ok(b.clone()),
        Value::Int(n) => Ok(Bytes::from(n.to_string())),
        Value::Record(_) | Value::Leases(_) | Value::Log(_) => {
            Err(StoreError::WrongType(key.to_string()))
        }
    }
}

pub(crate) fn as_int(key: &str, value: &Value) -> StoreResult<i64> {
    match value {
        Value::Int(n) => Ok(*n),
        Value::Bytes(b) => parse_i64(b).ok_or_else(|| StoreError::WrongType(key.to_string())),
        Value::Record(_) | Value::Leases(_) | Value::Log(_) => {
            Err(StoreError::WrongType(key.to_string()))
        }
    }
}

/// The counter's value (missing = 0) and its expiry, which arithmetic keeps (like INCRBY).
pub(crate) fn counter(
    map: &mut Map,
    key: &str,
    now: Instant,
) -> StoreResult<(i64, Option<Instant>)> {
    match live(map, key, now) {
        None => Ok((0, None)),
        Some(e) => Ok((as_int(key, &e.value)?, e.expires)),
    }
}
