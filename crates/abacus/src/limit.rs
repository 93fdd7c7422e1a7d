//! A cluster-wide rate limit any service can use: `Limiter::check` records one request for
//! a caller in the shared store (a sliding-window log, so at most `limit` requests pass in
//! ANY window-long span across all nodes) and `Verdict::apply` writes the `RateLimit-*`
//! headers. `Limiter::limited_apply` does the same check and, when it admits, an idempotent
//! counter step, in one store call. The abacus calls `check` from its middleware
//! (`guard.rs`) and `limited_apply` from its keyed writes (`api.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use floodgate_store::{
    Apply, IdemOutcome, Limited, RateDecision, RateLimit, SharedStore, StoreResult,
};

pub const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// `limit` requests per `window` for each caller, keyed under `prefix`, every log kept
/// beside the counter `anchor` (in its hash slot on Redis Cluster, so one script can check
/// the limit and change the counter).
#[derive(Clone)]
pub struct Limiter {
    store: SharedStore,
    anchor: Arc<str>,
    prefix: Arc<str>,
    limit: u32,
    window: Duration,
}

/// The store's decision for one request, with the limit it was taken against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: RateDecision,
    pub limit: u32,
}

impl Limiter {
    pub fn new(
        store: SharedStore,
        anchor: &str,
        prefix: &str,
        limit: u32,
        window: Duration,
    ) -> Self {
        Limiter {
            store,
            anchor: Arc::from(anchor),
            prefix: Arc::from(prefix),
            limit,
            window,
        }
    }

    /// Counts one request by `who` (an API-key hash, a client address...) and says whether
    /// it may proceed. One atomic store step; `Err` when the store is unreachable.
    pub async fn check(&self, who: &str) -> StoreResult<Verdict> {
        let key = self.key(who);
        let decision = self
            .store
            .rate_limit_beside(&self.anchor, self.rate(&key))
            .await?;
        Ok(self.verdict(decision))
    }

    /// Counts one request by `who` as [`Limiter::check`] does and, only when it is
    /// admitted, runs `apply` (`Store::idempotent_apply`) on the anchor counter (its
    /// `counter` must be the anchor, where the limiter keeps its logs): one atomic store
    /// step, one round trip. The outcome is None when refused (then nothing was recorded
    /// or changed).
    pub async fn limited_apply(
        &self,
        who: &str,
        apply: Apply<'_>,
    ) -> StoreResult<(Verdict, Option<IdemOutcome>)> {
        debug_assert_eq!(apply.counter, &*self.anchor, "the limiter's anchor");
        let key = self.key(who);
        let done = self.store.limited_apply(self.rate(&key), apply).await?;
        Ok(match done {
            Limited::Refused(d) => (self.verdict(d), None),
            Limited::Admitted(d, outcome) => (self.verdict(d), Some(outcome)),
        })
    }

    fn key(&self, who: &str) -> String {
        format!("{}{who}", self.prefix)
    }

    /// This limiter's limit on the log at `key`.
    fn rate<'a>(&self, key: &'a str) -> RateLimit<'a> {
        RateLimit {
            key,
            limit: self.limit,
            window: self.window,
        }
    }

    fn verdict(&self, decision: RateDecision) -> Verdict {
        Verdict {
            decision,
            limit: self.limit,
        }
    }
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.decision.allowed
    }

    /// `Retry-After` in whole seconds, rounded up so a client that waits it is admitted.
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.decision.retry_after).max(1)
    }

    /// Adds `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until
    /// every counted request has left the window).
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.decision.remaining));
        headers.insert(
            RESET,
            HeaderValue::from(ceil_secs(self.decision.reset_after)),
        );
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(allowed: bool, retry_ms: u64, reset_ms: u64) -> Verdict {
        Verdict {
            decision: RateDecision {
                allowed,
                remaining: 0,
                retry_after: Duration::from_millis(retry_ms),
                reset_after: Duration::from_millis(reset_ms),
            },
            limit: 3,
        }
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(verdict(false, 1, 0).retry_after_secs(), 1);
        assert_eq!(verdict(false, 1000, 0).retry_after_secs(), 1);
        assert_eq!(verdict(false, 1001, 0).retry_after_secs(), 2);
        let mut h = HeaderMap::new();
        verdict(true, 0, 59_001).apply(&mut h);
        assert_eq!(h[&RESET], "60");
        assert_eq!(h[&LIMIT], "3");
        assert_eq!(h[&REMAINING], "0");
    }
}
