//! The shared store: cached bytes, exact counters, leases, rate limits and idempotency
//! records, each with a TTL. `memory` serves one process; `redis` makes every guarantee
//! hold across nodes (each compound step is one Lua script, so one round trip and atomic).
//!
//! The store is narrow by capability. [`Kv`] is the small core both backends share (bytes
//! and counters); each policy on top of it is a folder of its own holding its trait, its
//! algorithm, its Lua and its memory and Redis halves: `adopt/` ([`CounterAdoption`]),
//! `idempotency/` ([`Idempotency`]), `lease/` ([`Leases`]) and `rate_limit/`
//! ([`RateLimiting`], and [`LimitedApply`], the limit in front of an idempotent apply).
//! [`Store`] is every capability at once, so callers keep one `Arc<dyn Store>`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub mod memory;
pub mod redis;

mod adopt;
mod idempotency;
mod lease;
mod rate_limit;
mod text;

pub use adopt::{Adopt, Adoption, CounterAdoption};
pub use idempotency::{Apply, CounterOp, IdemOutcome, Idempotency};
pub use lease::{Lease, Leases};
pub use memory::MemoryStore;
pub use rate_limit::{Limited, LimitedApply, RateDecision, RateLimit, RateLimiting};
pub use redis::RedisStore;

/// The cause carried by an error: any error, or a message (`"timed out".into()`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong talking to the store. Callers map these to HTTP statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable or timed out: retryable, maps to 503. Carries the cause
    /// (e.g. the Redis client's error).
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// An exact integer operation would leave the signed 64-bit range.
    #[error("integer overflow")]
    Overflow,
    /// The stored value is not of the expected kind (e.g. INCR on non-integer bytes).
    #[error("wrong value type at {0}")]
    WrongType(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which backend a store is: decide on this (or on [`Backend::is_shared`]), never on the
/// text of [`Kv::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The in-process store ([`MemoryStore`]).
    Memory,
    /// One Redis server ([`RedisStore`]).
    Redis,
    /// A Redis Cluster ([`RedisStore`] on a `redis+cluster://` URL).
    RedisCluster,
}

impl Backend {
    /// "memory", "redis" or "redis-cluster", for /ready and logs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis => "redis",
            Backend::RedisCluster => "redis-cluster",
        }
    }

    /// True when every process given the same URL sees the same data (Redis, Redis
    /// Cluster); false for the in-process store.
    pub fn is_shared(self) -> bool {
        !matches!(self, Backend::Memory)
    }
}

/// A swap asked for ([`Kv::compare_and_set`]): the value `new`, kept `ttl` (None = forever),
/// only when the key holds `expected` (None = the key is absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap<'a> {
    pub expected: Option<&'a [u8]>,
    pub new: Bytes,
    pub ttl: Option<Duration>,
}

/// The core every backend offers: bytes and exact counters under keys, each with an
/// optional TTL. Policies (idempotency, leases, rate limits) are capabilities of their own.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// "memory", "redis" or "redis-cluster", for /ready and logs (decide on
    /// [`Kv::backend`] or [`Kv::is_shared`]).
    fn kind(&self) -> &'static str {
        self.backend().name()
    }

    /// True when every process given the same URL sees the same data (Redis, Redis
    /// Cluster); false for the in-process store.
    fn is_shared(&self) -> bool {
        self.backend().is_shared()
    }

    /// Round trip to the backend; `Err(Unavailable)` when it does not answer.
    async fn ping(&self) -> StoreResult<()>;

    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>>;
    /// Sets `key`; `ttl` None keeps it forever.
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<()>;
    /// Sets `key` only when absent; true when it was set.
    async fn set_nx(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<bool>;
    /// Sets `key` to `swap.new` (for `swap.ttl`) only when its current value equals
    /// `swap.expected` (None = absent). True when swapped.
    async fn compare_and_set(&self, key: &str, swap: Swap<'_>) -> StoreResult<bool>;
    /// Deletes `key`; true when it existed.
    async fn del(&self, key: &str) -> StoreResult<bool>;

    /// Exact 64-bit add; a missing key counts as 0. Overflow → `Err(Overflow)`, no change.
    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64>;
    /// Reads a counter written by `incr_by` (missing → 0).
    async fn get_i64(&self, key: &str) -> StoreResult<i64>;
}

/// Every capability at once: what services hold (`Arc<dyn Store>`). Implemented for any
/// type that has them all; a method of any capability can be called on a `dyn Store`
/// without importing its trait.
pub trait Store: Kv + CounterAdoption + Idempotency + Leases + RateLimiting + LimitedApply {}

impl<T> Store for T where
    T: Kv + CounterAdoption + Idempotency + Leases + RateLimiting + LimitedApply + ?Sized
{
}

pub type SharedStore = Arc<dyn Store>;

/// Picks the backend: a `redis://` URL → Redis, none → in-memory.
pub async fn connect(url: Option<&str>) -> StoreResult<SharedStore> {
    match url {
        None | Some("") | Some("memory") | Some("memory://") => Ok(Arc::new(MemoryStore::new())),
        Some(u) => Ok(Arc::new(RedisStore::connect(u).await?)),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::StoreError;

    #[test]
    fn unavailable_keeps_its_cause_and_its_text() {
        let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let e = StoreError::Unavailable(Box::new(cause));
        assert_eq!(e.to_string(), "store unavailable: timed out");
        let source = e.source().expect("the cause is kept");
        assert!(source.is::<std::io::Error>());
        // A plain message still works, as a cause of its own.
        let e = StoreError::Unavailable("not connected".into());
        assert_eq!(e.to_string(), "store unavailable: not connected");
    }
}
