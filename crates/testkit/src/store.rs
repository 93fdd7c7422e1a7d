//! A store wrapper for tests, the one every crate's tests use: puts every key under a
//! per-test prefix (so tests share one Redis without seeing each other's keys), records the
//! keys written with `set`, and injects failures on demand ([`Faults`]). It has every
//! capability of the store, so it is a `Store` itself; most methods only forward
//! (`forward!`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use floodgate_store::{
    Adopt, Adoption, Apply, Backend, CounterAdoption, IdemOutcome, Idempotency, Kv, Lease, Leases,
    Limited, LimitedApply, RateDecision, RateLimit, RateLimiting, SharedStore, StoreError,
    StoreResult, Swap,
};

/// Switches read by [`TestStore`]; shared with the test through an `Arc`.
#[derive(Default)]
pub struct Faults {
    /// Every call fails with `Unavailable`, as if the backend were unreachable.
    pub down: AtomicBool,
    /// Every `set` fails with `Unavailable` (other calls go through).
    pub fail_sets: AtomicBool,
    /// Every Nth `idempotent_apply` or `limited_apply` is applied but its reply "lost"
    /// (0 = never).
    pub lose_reply_every: AtomicU64,
    /// Every Nth `idempotent_apply` or `limited_apply` fails before reaching the store
    /// (0 = never).
    pub fail_every: AtomicU64,
    calls: AtomicU64,
    /// How many replies were lost and how many calls failed early.
    pub lost: AtomicU64,
    pub failed: AtomicU64,
}

impl Faults {
    fn check_up(&self) -> StoreResult<()> {
        if self.down.load(Ordering::Relaxed) {
            Err(StoreError::Unavailable("test: store down".into()))
        } else {
            Ok(())
        }
    }

    fn every(n: &AtomicU64, call: u64) -> bool {
        let n = n.load(Ordering::Relaxed);
        n > 0 && call % n == n - 1
    }
}

pub struct TestStore {
    inner: SharedStore,
    prefix: String,
    pub faults: Arc<Faults>,
    /// Keys passed to `set` (as the caller named them), in order.
    written: Mutex<Vec<String>>,
}

impl TestStore {
    /// `inner` with every key under `prefix` ("" for none).
    pub fn new(inner: SharedStore, prefix: &str) -> Self {
        TestStore {
            inner,
            prefix: prefix.to_string(),
            faults: Arc::new(Faults::default()),
            written: Mutex::new(Vec::new()),
        }
    }

    /// `inner` unprefixed, shared.
    pub fn wrap(inner: SharedStore) -> Arc<TestStore> {
        Arc::new(TestStore::new(inner, ""))
    }

    /// Makes every `set` fail (true) or work again (false).
    pub fn fail_sets(&self, fail: bool) {
        self.faults.fail_sets.store(fail, Ordering::Relaxed);
    }

    /// Keys passed to `set`, in order.
    pub fn written(&self) -> Vec<String> {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn k(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Counts an apply and fails it here when its turn has come; returns its number.
    fn before_apply(&self) -> StoreResult<u64> {
        self.faults.check_up()?;
        let call = self.faults.calls.fetch_add(1, Ordering::Relaxed);
        if Faults::every(&self.faults.fail_every, call) {
            self.faults.failed.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable(
                "test: failed before applying".into(),
            ));
        }
        Ok(call)
    }

    /// Loses the reply of apply number `call` when its turn has come.
    fn after_apply(&self, call: u64) -> StoreResult<()> {
        if Faults::every(&self.faults.lose_reply_every, call) {
            self.faults.lost.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable("test: reply lost".into()));
        }
        Ok(())
    }
}

/// Implements a capability for [`TestStore`]. The methods in braces are written out by
/// hand; each method listed after them calls the inner store with the arguments marked
/// `as key` put under the prefix (and the keys inside an argument marked `as rate`: the rate
/// limit's log, `as apply`: the counter and the idempotency key, `as lease`: the pool,
/// `as adopt`: the source, the target and the marker), after [`Faults::down`] is checked,
/// or, marked `#[apply]`, counted as an apply ([`Faults::fail_every`],
/// [`Faults::lose_reply_every`]).
macro_rules! forward {
    (@arg $s:tt, $a:ident) => { $a };
    (@arg $s:tt, $a:ident, key) => { &$s.k($a) };
    (@arg $s:tt, $a:ident, rate) => { RateLimit { key: &$s.k($a.key), ..$a } };
    (@arg $s:tt, $a:ident, apply) => {
        Apply { counter: &$s.k($a.counter), key: &$s.k($a.key), ..$a }
    };
    (@arg $s:tt, $a:ident, lease) => { Lease { pool: &$s.k($a.pool), ..$a } };
    (@arg $s:tt, $a:ident, adopt) => {
        Adopt { from: &$s.k($a.from), to: &$s.k($a.to), marker: &$s.k($a.marker), ..$a }
    };
    (@call $s:tt, , $call:expr) => {{
        $s.faults.check_up()?;
        $call.await
    }};
    (@call $s:tt, apply, $call:expr) => {{
        let call = $s.before_apply()?;
        let outcome = $call.await?;
        $s.after_apply(call)?;
        Ok(outcome)
    }};
    ($cap:ident { $($by_hand:tt)* }
     $($(#[$hook:ident])? fn $name:ident($($arg:ident: $ty:ty $(as $key:ident)?),*) -> $ret:ty;)*) => {
        #[async_trait]
        impl $cap for TestStore {
            $($by_hand)*
            $(
                async fn $name(&self, $($arg: $ty),*) -> $ret {
                    forward!(@call self, $($hook)?,
                        self.inner.$name($(forward!(@arg self, $arg $(, $key)?)),*))
                }
            )*
        }
    };
}

forward! { Kv {
        fn backend(&self) -> Backend {
            self.inner.backend()
        }

        async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<()> {
            self.faults.check_up()?;
            if self.faults.fail_sets.load(Ordering::Relaxed) {
                return Err(StoreError::Unavailable("test: writes failing".into()));
            }
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(key.to_string());
            self.inner.set(&self.k(key), value, ttl).await
        }
    }
    fn ping() -> StoreResult<()>;
    fn get(key: &str as key) -> StoreResult<Option<Bytes>>;
    fn set_nx(key: &str as key, value: Bytes, ttl: Option<Duration>) -> StoreResult<bool>;
    fn compare_and_set(key: &str as key, swap: Swap<'_>) -> StoreResult<bool>;
    fn del(key: &str as key) -> StoreResult<bool>;
    fn incr_by(key: &str as key, delta: i64) -> StoreResult<i64>;
    fn get_i64(key: &str as key) -> StoreResult<i64>;
}

forward! { CounterAdoption {}
    fn adopt_counter(adopt: Adopt<'_> as adopt) -> StoreResult<Adoption>;
}

forward! { Idempotency {}
    #[apply] fn idempotent_apply(apply: Apply<'_> as apply) -> StoreResult<IdemOutcome>;
}

forward! { Leases {}
    fn lease_acquire(lease: Lease<'_> as lease) -> StoreResult<bool>;
    fn lease_release(pool: &str as key, holder: &str) -> StoreResult<()>;
    fn lease_count(pool: &str as key) -> StoreResult<u32>;
    fn lease_holders(pool: &str as key) -> StoreResult<Vec<String>>;
}

forward! { RateLimiting {}
    fn rate_limit(rate: RateLimit<'_> as rate) -> StoreResult<RateDecision>;
    fn rate_limit_beside(anchor: &str as key, rate: RateLimit<'_> as rate)
        -> StoreResult<RateDecision>;
}

forward! { LimitedApply {}
    #[apply] fn limited_apply(rate: RateLimit<'_> as rate, apply: Apply<'_> as apply)
        -> StoreResult<Limited<IdemOutcome>>;
}
