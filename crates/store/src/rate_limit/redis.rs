//! The Redis half: `window.lua` (the algorithm) run by `rate_limit.lua`, or by
//! `limited_apply.lua` in front of `idempotency/counter_apply.lua`, on Redis TIME so every
//! node shares one clock.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use ::redis::Script;
use async_trait::async_trait;

use super::{refuse_all, Limit, Limited, LimitedApply, RateDecision, RateLimit, RateLimiting};
use crate::idempotency::redis::Step;
use crate::redis::{placed, unexpected};
use crate::{Apply, IdemOutcome, RedisStore, StoreResult};

static RATE_LIMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("window.lua"),
        include_str!("rate_limit.lua")
    ))
});

static LIMITED_APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("window.lua"),
        include_str!("../idempotency/counter_apply.lua"),
        include_str!("limited_apply.lua")
    ))
});

/// Log members no other call of any node uses.
pub(crate) struct Members {
    /// Random per store, so rate-limit entries from different nodes never share a member.
    node_nonce: u64,
    /// Makes each rate-limit entry of this store unique.
    seq: AtomicU64,
}

impl Members {
    pub fn new() -> Self {
        Self {
            // RandomState is seeded from the OS's randomness.
            node_nonce: RandomState::new().hash_one(std::process::id()),
            seq: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        format!(
            "{:x}.{:x}",
            self.node_nonce,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl RedisStore {
    /// The limiter on the log stored at `rate.key` (already placed).
    async fn rate_limit_at(&self, rate: RateLimit<'_>) -> StoreResult<RateDecision> {
        let Some(l) = Limit::new(rate.limit, rate.window) else {
            return Ok(refuse_all(rate.window));
        };
        let member = self.members.next();
        let mut script = RATE_LIMIT.key(rate.key);
        script.arg(l.limit).arg(l.window_us).arg(member);
        let (allowed, count, retry_us, reset_us): (i64, i64, i64, i64) =
            self.invoke(rate.key, script).await?;
        l.script_decision([allowed, count, retry_us, reset_us])
            .ok_or_else(|| unexpected("rate_limit"))
    }
}

#[async_trait]
impl RateLimiting for RedisStore {
    async fn rate_limit(&self, rate: RateLimit<'_>) -> StoreResult<RateDecision> {
        self.rate_limit_at(rate).await
    }

    async fn rate_limit_beside(
        &self,
        anchor: &str,
        rate: RateLimit<'_>,
    ) -> StoreResult<RateDecision> {
        let log = placed(self.conn.is_cluster(), anchor, rate.key)?;
        self.rate_limit_at(RateLimit { key: &log, ..rate }).await
    }
}

#[async_trait]
impl LimitedApply for RedisStore {
    async fn limited_apply(
        &self,
        rate: RateLimit<'_>,
        apply: Apply<'_>,
    ) -> StoreResult<Limited<IdemOutcome>> {
        let counter = apply.counter;
        let Some(l) = Limit::new(rate.limit, rate.window) else {
            return Ok(Limited::Refused(refuse_all(rate.window)));
        };
        let member = self.members.next();
        // On a cluster all three keys take the counter's slot (one script, one slot).
        let log = placed(self.conn.is_cluster(), counter, rate.key)?;
        let step = Step::new(self, apply)?;
        let mut script = LIMITED_APPLY.key(&*log);
        script.arg(l.limit).arg(l.window_us).arg(member);
        step.onto(&mut script);
        let reply: (i64, i64, i64, i64, String, String) = self.invoke(counter, script).await?;
        let (allowed, count, retry_us, reset_us, status, value) = reply;
        let decision = l
            .script_decision([allowed, count, retry_us, reset_us])
            .ok_or_else(|| unexpected("limited_apply"))?;
        if !decision.allowed {
            return match status.as_str() {
                "refused" => Ok(Limited::Refused(decision)),
                _ => Err(unexpected("limited_apply")),
            };
        }
        let outcome = step.outcome(&status, &value, "limited_apply")?;
        Ok(Limited::Admitted(decision, outcome))
    }
}
