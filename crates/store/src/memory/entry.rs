//! What the memory store keeps per key, and the small helpers every operation shares.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::text::parse_i64;
use crate::{StoreError, StoreResult};

pub(super) type Map = HashMap<Box<str>, Entry>;

/// What a key holds. Counters are integers but read back as decimal text, like Redis.
#[derive(Debug, Clone)]
pub(super) enum Value {
    Bytes(Bytes),
    Int(i64),
    Record {
        fingerprint: Box<str>,
        result: i64,
    },
    Leases(HashMap<Box<str>, Instant>),
    /// Rate-limit admissions, microseconds on the store's clock, oldest first.
    Log(VecDeque<u64>),
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub value: Value,
    pub expires: Option<Instant>,
}

impl Entry {
    pub fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// The live entry at `key`, dropping it when expired.
pub(super) fn live<'a>(map: &'a mut Map, key: &str, now: Instant) -> Option<&'a mut Entry> {
    if map.get(key).is_some_and(|e| !e.live(now)) {
        map.remove(key);
    }
    map.get_mut(key)
}

pub(super) fn expiry(now: Instant, ttl: Option<Duration>) -> Option<Instant> {
    // A TTL too large to represent means "forever".
    ttl.and_then(|t| now.checked_add(t))
}

pub(super) fn insert(map: &mut Map, key: &str, value: Value, expires: Option<Instant>) {
    map.insert(key.into(), Entry { value, expires });
}

/// Bytes as Redis would return them from GET.
pub(super) fn as_bytes(key: &str, value: &Value) -> StoreResult<Bytes> {
    match value {
        Value::Bytes(b) => Ok(b.clone()),
        Value::Int(n) => Ok(Bytes::from(n.to_string())),
        Value::Record { .. } | Value::Leases(_) | Value::Log(_) => {
            Err(StoreError::WrongType(key.to_string()))
        }
    }
}

pub(super) fn as_int(key: &str, value: &Value) -> StoreResult<i64> {
    match value {
        Value::Int(n) => Ok(*n),
        Value::Bytes(b) => parse_i64(b).ok_or_else(|| StoreError::WrongType(key.to_string())),
        Value::Record { .. } | Value::Leases(_) | Value::Log(_) => {
            Err(StoreError::WrongType(key.to_string()))
        }
    }
}

/// The counter's value (missing = 0) and its expiry, which arithmetic keeps (like INCRBY).
pub(super) fn counter(
    map: &mut Map,
    key: &str,
    now: Instant,
) -> StoreResult<(i64, Option<Instant>)> {
    match live(map, key, now) {
        None => Ok((0, None)),
        Some(e) => Ok((as_int(key, &e.value)?, e.expires)),
    }
}
