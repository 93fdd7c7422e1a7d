//! A store wrapper for tests, the one every crate's tests use: puts every key under a
//! per-test prefix (so tests share one Redis without seeing each other's keys), records the
//! keys written with `set`, and injects failures on demand ([`Faults`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use floodgate_store::{
    Adoption, CounterOp, IdemOutcome, Limited, RateDecision, RateLimit, SharedStore, Store,
    StoreError, StoreResult,
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

#[async_trait]
impl Store for TestStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.faults.check_up()?;
        self.inner.ping().await
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        self.faults.check_up()?;
        self.inner.get(&self.k(key)).await
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

    async fn set_nx(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<bool> {
        self.faults.check_up()?;
        self.inner.set_nx(&self.k(key), value, ttl).await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Bytes,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        self.faults.check_up()?;
        self.inner
            .compare_and_set(&self.k(key), expected, new, ttl)
            .await
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        self.faults.check_up()?;
        self.inner.del(&self.k(key)).await
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.faults.check_up()?;
        self.inner.incr_by(&self.k(key), delta).await
    }

    async fn get_i64(&self, key: &str) -> StoreResult<i64> {
        self.faults.check_up()?;
        self.inner.get_i64(&self.k(key)).await
    }

    async fn adopt_counter(
        &self,
        from: &str,
        seen: &[u8],
        to: &str,
        value: i64,
        marker: &str,
    ) -> StoreResult<Adoption> {
        self.faults.check_up()?;
        self.inner
            .adopt_counter(&self.k(from), seen, &self.k(to), value, &self.k(marker))
            .await
    }

    async fn idempotent_apply(
        &self,
        counter: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<IdemOutcome> {
        let call = self.before_apply()?;
        let outcome = self
            .inner
            .idempotent_apply(&self.k(counter), op, &self.k(idem_key), fingerprint, ttl)
            .await?;
        self.after_apply(call)?;
        Ok(outcome)
    }

    async fn limited_apply(
        &self,
        rate: RateLimit<'_>,
        counter: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<Limited<IdemOutcome>> {
        let call = self.before_apply()?;
        let log = self.k(rate.key);
        let rate = RateLimit { key: &log, ..rate };
        let outcome = self
            .inner
            .limited_apply(
                rate,
                &self.k(counter),
                op,
                &self.k(idem_key),
                fingerprint,
                ttl,
            )
            .await?;
        self.after_apply(call)?;
        Ok(outcome)
    }

    async fn lease_acquire(
        &self,
        pool: &str,
        holder: &str,
        capacity: u32,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.faults.check_up()?;
        self.inner
            .lease_acquire(&self.k(pool), holder, capacity, ttl)
            .await
    }

    async fn lease_release(&self, pool: &str, holder: &str) -> StoreResult<()> {
        self.faults.check_up()?;
        self.inner.lease_release(&self.k(pool), holder).await
    }

    async fn lease_count(&self, pool: &str) -> StoreResult<u32> {
        self.faults.check_up()?;
        self.inner.lease_count(&self.k(pool)).await
    }

    async fn lease_holders(&self, pool: &str) -> StoreResult<Vec<String>> {
        self.faults.check_up()?;
        self.inner.lease_holders(&self.k(pool)).await
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        self.faults.check_up()?;
        self.inner.rate_limit(&self.k(key), limit, window).await
    }

    async fn rate_limit_beside(
        &self,
        anchor: &str,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        self.faults.check_up()?;
        self.inner
            .rate_limit_beside(&self.k(anchor), &self.k(key), limit, window)
            .await
    }
}
