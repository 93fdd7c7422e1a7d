//! Leases: up to `capacity` holders in a pool, each slot expiring unless renewed. The memory
//! half is in `memory.rs`; the Redis half keeps a pool as a sorted set (member = holder,
//! score = expiry in ms of Redis TIME) in `acquire.lua`, `count.lua` and `holders.lua`.

use std::time::Duration;

use async_trait::async_trait;

use crate::StoreResult;

pub(crate) mod memory;
pub(crate) mod redis;

/// A lease asked for ([`Leases::lease_acquire`]): one of `capacity` slots in `pool` for
/// `holder`, expiring after `ttl` unless renewed or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease<'a> {
    pub pool: &'a str,
    pub holder: &'a str,
    pub capacity: u32,
    pub ttl: Duration,
}

#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes one of `lease.capacity` slots in `lease.pool` for `lease.holder`, as a lease that
    /// expires after `lease.ttl` unless released (a holder that has a slot renews it). False
    /// when the pool is full.
    async fn lease_acquire(&self, lease: Lease<'_>) -> StoreResult<bool>;
    /// Gives back `holder`'s slot (a no-op when it already expired).
    async fn lease_release(&self, pool: &str, holder: &str) -> StoreResult<()>;
    /// Live (unexpired) leases in `pool`.
    async fn lease_count(&self, pool: &str) -> StoreResult<u32>;
    /// Holders of the live leases in `pool`, sorted (e.g. who is alive in a cluster,
    /// when each member renews a lease as its heartbeat).
    async fn lease_holders(&self, pool: &str) -> StoreResult<Vec<String>>;
}
