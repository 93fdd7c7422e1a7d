//! Idempotent counter steps: a step applied at most once per idempotency key, the change and
//! the record `(fingerprint, result)` committed in one atomic step. The memory half is in
//! `memory.rs`; the Redis half is `counter_apply.lua` (the algorithm, also called by
//! `rate_limit/limited_apply.lua`) run by `idempotent_apply.lua`, read back in `redis.rs`.

use std::time::Duration;

use async_trait::async_trait;

use crate::StoreResult;

pub(crate) mod memory;
pub(crate) mod redis;

/// An arithmetic step applied to a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    Add(i64),
    Set(i64),
}

/// Outcome of [`Idempotency::idempotent_apply`].
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

/// One idempotent step ([`Idempotency::idempotent_apply`]): `op` on the counter at
/// `counter`, at most once per idempotency key `key`, remembered with `fingerprint` for
/// `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Apply<'a> {
    pub counter: &'a str,
    pub op: CounterOp,
    /// The idempotency key: where the record `(fingerprint, result)` is kept.
    pub key: &'a str,
    pub fingerprint: &'a str,
    /// How long the record lives.
    pub ttl: Duration,
}

#[async_trait]
pub trait Idempotency: Send + Sync + 'static {
    /// Applies `apply.op` to the counter at `apply.counter` at most once per `apply.key`: the
    /// change and the record `(fingerprint, result)` are committed in one atomic step. The
    /// record lives `apply.ttl`.
    async fn idempotent_apply(&self, apply: Apply<'_>) -> StoreResult<IdemOutcome>;
}
