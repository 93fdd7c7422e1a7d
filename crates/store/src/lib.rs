//! The shared store: cached bytes, exact counters, leases, rate limits and idempotency
//! records, each with a TTL. `memory` serves one process; `redis` makes every guarantee
//! hold across nodes (each compound step is one Lua script, so one round trip and atomic).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub mod memory;
pub mod redis;

mod rate_limit;
mod text;

pub use memory::MemoryStore;
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

/// An arithmetic step applied to a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    Add(i64),
    Set(i64),
}

/// Outcome of [`Store::idempotent_apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdemOutcome {
    /// First time this key was seen: the op was applied; the counter is now this value.
    Applied(i64),
    /// The key was seen with the same fingerprint: nothing applied, original result returned.
    Replayed(i64),
    /// The key was seen with a different fingerprint (different body): nothing applied.
    Mismatch,
    /// The op would overflow: nothing applied, no record written.
    Overflow,
}

/// Outcome of [`Store::adopt_counter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// Copied now; the marker records it.
    Moved,
    /// The marker exists: adopted before (by this node or another).
    Done,
    /// The source key is gone.
    Absent,
    /// The source no longer reads as it did: read it again.
    Changed,
    /// Our key already holds a value; nothing was overwritten.
    TargetExists,
}

/// Outcome of a rate-limit check ([`Store::rate_limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests still allowed right now (0 when refused).
    pub remaining: u64,
    /// When refused: how long until one request would be allowed (rounded up to ms).
    pub retry_after: Duration,
    /// How long until every recorded request has left the window (for `RateLimit-Reset`).
    pub reset_after: Duration,
}

/// One rate-limit check: a sliding-window log at `key`, at most `limit` admissions in any
/// `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit<'a> {
    pub key: &'a str,
    pub limit: u32,
    pub window: Duration,
}

/// Outcome of [`Store::limited_apply`]: the limiter's decision, and the step's outcome when
/// it was admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limited<T> {
    /// Over the limit: nothing recorded, nothing applied.
    Refused(RateDecision),
    /// Admitted (and counted), then the step ran.
    Admitted(RateDecision, T),
}

impl<T> Limited<T> {
    /// The limiter's figures, refused or not.
    pub fn rate(&self) -> &RateDecision {
        match self {
            Limited::Refused(d) | Limited::Admitted(d, _) => d,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "memory", "redis" or "redis-cluster", for /ready and logs (decide on `is_shared`).
    fn kind(&self) -> &'static str;

    /// True when every process given the same URL sees the same data (Redis, Redis
    /// Cluster); false for the in-process store.
    fn is_shared(&self) -> bool;

    /// Round trip to the backend; `Err(Unavailable)` when it does not answer.
    async fn ping(&self) -> StoreResult<()>;

    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>>;
    /// Sets `key`; `ttl` None keeps it forever.
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<()>;
    /// Sets `key` only when absent; true when it was set.
    async fn set_nx(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<bool>;
    /// Sets `key` to `new` only when its current value equals `expected` (None = absent).
    /// True when swapped.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Bytes,
        ttl: Option<Duration>,
    ) -> StoreResult<bool>;
    /// Deletes `key`; true when it existed.
    async fn del(&self, key: &str) -> StoreResult<bool>;

    /// Exact 64-bit add; a missing key counts as 0. Overflow → `Err(Overflow)`, no change.
    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64>;
    /// Reads a counter written by `incr_by` (missing → 0).
    async fn get_i64(&self, key: &str) -> StoreResult<i64>;

    /// Takes over a counter another program kept at `from`, once, in one atomic step: when
    /// `marker` is absent, `from` still reads `seen` and `to` is absent, sets `to` to
    /// `value` and `marker` to `seen`. `from` is left as it was.
    async fn adopt_counter(
        &self,
        from: &str,
        seen: &[u8],
        to: &str,
        value: i64,
        marker: &str,
    ) -> StoreResult<Adoption>;

    /// Applies `op` to the counter at `counter` at most once per `idem_key`: the change and
    /// the record `(fingerprint, result)` are committed in one atomic step. The record lives
    /// `ttl`.
    async fn idempotent_apply(
        &self,
        counter: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<IdemOutcome>;

    /// Takes one of `capacity` slots in `pool` for `holder`, as a lease that expires after
    /// `ttl` unless released. False when the pool is full.
    async fn lease_acquire(
        &self,
        pool: &str,
        holder: &str,
        capacity: u32,
        ttl: Duration,
    ) -> StoreResult<bool>;
    /// Gives back `holder`'s slot (a no-op when it already expired).
    async fn lease_release(&self, pool: &str, holder: &str) -> StoreResult<()>;
    /// Live (unexpired) leases in `pool`.
    async fn lease_count(&self, pool: &str) -> StoreResult<u32>;
    /// Holders of the live leases in `pool`, sorted (e.g. who is alive in a cluster,
    /// when each member renews a lease as its heartbeat).
    async fn lease_holders(&self, pool: &str) -> StoreResult<Vec<String>>;

    /// Sliding-window-log limiter: admits a request for `key` only while fewer than `limit`
    /// were admitted in the last `window`, so at most `limit` pass in ANY window-long span
    /// (never the 2x of a fixed window across its boundary). An admission is recorded, a
    /// refusal is not. One atomic step; Redis uses its own clock so all nodes agree.
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision>;

    /// [`Store::rate_limit`] for a log that travels with `anchor`: on Redis Cluster it is
    /// kept in `anchor`'s hash slot (so one script may touch both, see
    /// [`Store::limited_apply`]); elsewhere the key is used as it is. Callers that also use
    /// `limited_apply` with `anchor` as its counter use this for the same log, never plain
    /// `rate_limit` (on a cluster that would be another key).
    /// Without hash slots (one process, one server) the log keeps its key.
    async fn rate_limit_beside(
        &self,
        _anchor: &str,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        self.rate_limit(key, limit, window).await
    }

    /// The rate limit, then, only when it admits, [`Store::idempotent_apply`], in one atomic
    /// step (one round trip on Redis). The limiter runs first whatever the idempotency
    /// record holds, so a replay or a mismatch is counted like any admitted call, and a
    /// refused call writes nothing (no log entry, no record, no change). The log is kept
    /// beside `counter` as with [`Store::rate_limit_beside`].
    ///
    /// This default runs the two steps one after the other, each atomic: a concurrent caller
    /// can at most see the admission a moment before the apply, as it would see an admitted
    /// call still under way (an admission counts even when the apply then fails, as in the
    /// Redis script). Redis overrides it with one script.
    async fn limited_apply(
        &self,
        rate: RateLimit<'_>,
        counter: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<Limited<IdemOutcome>> {
        let decision = self
            .rate_limit_beside(counter, rate.key, rate.limit, rate.window)
            .await?;
        if !decision.allowed {
            return Ok(Limited::Refused(decision));
        }
        let outcome = self
            .idempotent_apply(counter, op, idem_key, fingerprint, ttl)
            .await?;
        Ok(Limited::Admitted(decision, outcome))
    }
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
