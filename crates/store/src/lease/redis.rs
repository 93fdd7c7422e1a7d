//! The Redis half: a pool is a sorted set on the pool's key, trimmed by each script on Redis
//! TIME so every node agrees on which leases are live.

use std::sync::LazyLock;

use ::redis::{cmd, Script};
use async_trait::async_trait;

use super::{Lease, Leases};
use crate::redis::ttl_ms;
use crate::{RedisStore, StoreResult};

static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("acquire.lua")));
static COUNT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("count.lua")));
static HOLDERS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("holders.lua")));

#[async_trait]
impl Leases for RedisStore {
    async fn lease_acquire(&self, lease: Lease<'_>) -> StoreResult<bool> {
        let mut script = ACQUIRE.key(lease.pool);
        script
            .arg(lease.holder)
            .arg(lease.capacity)
            .arg(ttl_ms(lease.ttl));
        let acquired: i64 = self.invoke(lease.pool, script).await?;
        Ok(acquired == 1)
    }

    async fn lease_release(&self, pool: &str, holder: &str) -> StoreResult<()> {
        let mut c = cmd("ZREM");
        c.arg(pool).arg(holder);
        self.query(pool, c).await
    }

    async fn lease_count(&self, pool: &str) -> StoreResult<u32> {
        let n: u64 = self.invoke(pool, COUNT.key(pool)).await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn lease_holders(&self, pool: &str) -> StoreResult<Vec<String>> {
        let mut holders: Vec<String> = self.invoke(pool, HOLDERS.key(pool)).await?;
        holders.sort();
        Ok(holders)
    }
}
