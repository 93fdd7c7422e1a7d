//! Sliding-window-log limiting, the one place its algorithm lives: the trait
//! ([`RateLimiting`], and [`LimitedApply`] for a limit in front of an idempotent apply),
//! the algorithm itself ([`Limit::check`], which the memory half in `memory.rs` runs on a
//! [`Log`]), and the Redis half in `redis.rs` with its Lua: `window.lua` (mirrors
//! [`Limit::check`]), run by `rate_limit.lua` and `limited_apply.lua`, whose reply
//! [`Limit::script_decision`] reads.
//!
//! Each key keeps the timestamps (integer microseconds) of the requests it admitted during
//! the last window; a request passes only while fewer than `limit` remain. So at most
//! `limit` pass in ANY window-long span, unlike a fixed window or a GCRA with a full burst,
//! which both let about twice the limit through across a window boundary.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;

use crate::{Apply, IdemOutcome, Idempotency, StoreResult};

pub(crate) mod memory;
pub(crate) mod redis;

/// Outcome of a rate-limit check ([`RateLimiting::rate_limit`]).
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

/// Outcome of [`LimitedApply::limited_apply`]: the limiter's decision, and the step's
/// outcome when it was admitted.
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
pub trait RateLimiting: Send + Sync + 'static {
    /// Sliding-window-log limiter: admits a request for `rate.key` only while fewer than
    /// `rate.limit` were admitted in the last `rate.window`, so at most `limit` pass in ANY
    /// window-long span (never the 2x of a fixed window across its boundary). An admission is
    /// recorded, a refusal is not. One atomic step; Redis uses its own clock so all nodes
    /// agree.
    async fn rate_limit(&self, rate: RateLimit<'_>) -> StoreResult<RateDecision>;

    /// [`RateLimiting::rate_limit`] for a log that travels with `anchor`: on Redis Cluster
    /// it is kept in `anchor`'s hash slot (so one script may touch both, see
    /// [`LimitedApply::limited_apply`]); elsewhere the key is used as it is. Callers that
    /// also use `limited_apply` with `anchor` as its counter use this for the same log,
    /// never plain `rate_limit` (on a cluster that would be another key).
    /// Without hash slots (one process, one server) the log keeps its key.
    async fn rate_limit_beside(
        &self,
        _anchor: &str,
        rate: RateLimit<'_>,
    ) -> StoreResult<RateDecision> {
        self.rate_limit(rate).await
    }
}

/// A rate limit in front of an idempotent apply.
#[async_trait]
pub trait LimitedApply: RateLimiting + Idempotency {
    /// The rate limit, then, only when it admits, [`Idempotency::idempotent_apply`], in one
    /// atomic step (one round trip on Redis). The limiter runs first whatever the
    /// idempotency record holds, so a replay or a mismatch is counted like any admitted
    /// call, and a refused call writes nothing (no log entry, no record, no change). The
    /// log is kept beside `apply.counter` as with [`RateLimiting::rate_limit_beside`].
    ///
    /// This default runs the two steps one after the other, each atomic: a concurrent caller
    /// can at most see the admission a moment before the apply, as it would see an admitted
    /// call still under way (an admission counts even when the apply then fails, as in the
    /// Redis script). Redis overrides it with one script.
    async fn limited_apply(
        &self,
        rate: RateLimit<'_>,
        apply: Apply<'_>,
    ) -> StoreResult<Limited<IdemOutcome>> {
        let decision = self.rate_limit_beside(apply.counter, rate).await?;
        if !decision.allowed {
            return Ok(Limited::Refused(decision));
        }
        let outcome = self.idempotent_apply(apply).await?;
        Ok(Limited::Admitted(decision, outcome))
    }
}

/// A key's log: the admissions of the last window, microseconds on the store's clock,
/// oldest first.
pub(crate) type Log = VecDeque<u64>;

/// Longest window honoured; keeps every timestamp well inside a Lua double's exact range.
const MAX_WINDOW_US: u64 = 365 * 24 * 3600 * 1_000_000;

/// One limiter's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub limit: u32,
    pub window_us: u64,
}

/// What a check found, in the form both backends return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Check {
    pub allowed: bool,
    /// Timestamps in the log after the decision.
    pub count: u64,
    /// When refused: until enough entries expire for one request to pass.
    pub retry_us: u64,
    /// Until the newest entry expires (the log is empty again).
    pub reset_us: u64,
}

impl Limit {
    /// None when `limit` is 0 (nothing may pass).
    pub fn new(limit: u32, window: Duration) -> Option<Self> {
        if limit == 0 {
            return None;
        }
        let window_us = u64::try_from(window.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_WINDOW_US);
        Some(Self { limit, window_us })
    }

    /// Drops entries a window old or older, then admits `now` when there is room. `log`
    /// must be in ascending order; appending `now` (never earlier than the last entry,
    /// which the caller guarantees by reading a monotonic clock under its lock) keeps it so.
    pub fn check(&self, log: &mut Log, now: u64) -> Check {
        // An entry at exactly `now - window` has left the window (`ZREMRANGEBYSCORE -inf
        // now-window` in the script).
        while log.front().is_some_and(|&t| t + self.window_us <= now) {
            log.pop_front();
        }
        let limit = self.limit as usize;
        let allowed = log.len() < limit;
        if allowed {
            log.push_back(now);
        }
        let retry_us = if allowed {
            0
        } else {
            // Enough must expire that `limit - 1` remain: the entry at len - limit is the
            // last of those (only more than one when the limit shrank since they were added).
            log.get(log.len() - limit)
                .map_or(0, |&t| self.expires_in(t, now))
        };
        let reset_us = log.back().map_or(0, |&t| self.expires_in(t, now));
        Check {
            allowed,
            count: log.len() as u64,
            retry_us,
            reset_us,
        }
    }

    fn expires_in(&self, t: u64, now: u64) -> u64 {
        (t + self.window_us).saturating_sub(now)
    }

    /// The Redis half's answer, `{allowed, entries, retry us, reset us}` from `window.lua`;
    /// None when it is not that (a negative count or time).
    pub fn script_decision(&self, reply: [i64; 4]) -> Option<RateDecision> {
        let [allowed, count, retry_us, reset_us] = reply;
        let n = |v: i64| u64::try_from(v).ok();
        Some(self.decision(Check {
            allowed: allowed == 1,
            count: n(count)?,
            retry_us: n(retry_us)?,
            reset_us: n(reset_us)?,
        }))
    }

    /// Turns a check into what callers see.
    pub fn decision(&self, c: Check) -> RateDecision {
        let remaining = if c.allowed {
            u64::from(self.limit).saturating_sub(c.count)
        } else {
            0
        };
        RateDecision {
            allowed: c.allowed,
            remaining,
            retry_after: ceil_ms(c.retry_us),
            reset_after: ceil_ms(c.reset_us),
        }
    }
}

/// The decision for a limit of 0: always refused, one window until anything changes.
pub(crate) fn refuse_all(window: Duration) -> RateDecision {
    RateDecision {
        allowed: false,
        remaining: 0,
        retry_after: window,
        reset_after: window,
    }
}

/// Rounds microseconds up to whole milliseconds, so waiting `retry_after` is always enough.
fn ceil_ms(us: u64) -> Duration {
    Duration::from_millis(us.div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    #[test]
    fn admits_limit_then_refuses_until_the_oldest_leaves() {
        let l = Limit::new(4, Duration::from_secs(1)).expect("limit > 0");
        let mut log = VecDeque::new();
        let seen: Vec<_> = (0..6)
            .map(|i| l.decision(l.check(&mut log, 10 * SEC + i * 100_000)))
            .collect();
        let remaining: Vec<_> = seen.iter().map(|d| (d.allowed, d.remaining)).collect();
        assert_eq!(
            remaining,
            vec![
                (true, 3),
                (true, 2),
                (true, 1),
                (true, 0),
                (false, 0),
                (false, 0)
            ]
        );
        // Refused at 10.5 s: the first entry (10.0 s) leaves at 11.0 s.
        assert_eq!(seen[5].retry_after, Duration::from_millis(500));
        // The newest (10.3 s) leaves at 11.3 s.
        assert_eq!(seen[5].reset_after, Duration::from_millis(800));
        assert!(!l.check(&mut log, 11 * SEC - 1).allowed);
        assert!(l.check(&mut log, 11 * SEC).allowed);
        // That took the slot the first entry freed; the second frees at 11.1 s.
        assert!(!l.check(&mut log, 11 * SEC + 99_999).allowed);
        assert!(l.check(&mut log, 11 * SEC + 100_000).allowed);
    }

    #[test]
    fn never_more_than_limit_in_any_window() {
        // A request every 7 ms for 5 windows: every `limit + 1` consecutive admissions
        // must span at least one window.
        let l = Limit::new(10, Duration::from_millis(200)).expect("limit > 0");
        let mut log = VecDeque::new();
        let admitted: Vec<u64> = (0..1000u64)
            .map(|i| i * 7_000)
            .filter(|&t| l.check(&mut log, t).allowed)
            .collect();
        assert!(admitted.len() >= 40, "{}", admitted.len());
        for pair in admitted.windows(11) {
            assert!(pair[10] - pair[0] >= l.window_us, "{pair:?}");
        }
    }

    #[test]
    fn shrunk_limit_waits_for_enough_entries() {
        let big = Limit::new(4, Duration::from_secs(1)).expect("limit > 0");
        let mut log = VecDeque::new();
        for i in 0..4 {
            assert!(big.check(&mut log, SEC + i * 100_000).allowed);
        }
        // Now only 2 are allowed: 3 entries must leave, the third at 2.2 s.
        let small = Limit::new(2, Duration::from_secs(1)).expect("limit > 0");
        let c = small.check(&mut log, SEC + 500_000);
        assert!(!c.allowed);
        assert_eq!(c.retry_us, 700_000);
        assert!(Limit::new(0, Duration::from_secs(1)).is_none());
    }

    #[test]
    fn retry_rounds_up_to_ms() {
        let l = Limit::new(1, Duration::from_millis(1000)).expect("limit > 0");
        let mut log = VecDeque::new();
        assert!(l.check(&mut log, SEC).allowed);
        let d = l.decision(l.check(&mut log, 2 * SEC - 1));
        assert_eq!(d.retry_after, Duration::from_millis(1));
    }
}
