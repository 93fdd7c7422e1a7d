//! A store wrapper for tests: records which keys were written, and can be told to fail
//! writes (`set`) as if the backend had gone away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use floodgate_store::{
    Adoption, CounterOp, IdemOutcome, Limited, RateDecision, RateLimit, SharedStore, Store,
    StoreError, StoreResult,
};

pub struct TestStore {
    inner: SharedStore,
    fail_sets: AtomicBool,
    written: Mutex<Vec<String>>,
}

impl TestStore {
    pub fn wrap(inner: SharedStore) -> Arc<TestStore> {
        Arc::new(TestStore {
            inner,
            fail_sets: AtomicBool::new(false),
            written: Mutex::new(Vec::new()),
        })
    }

    pub fn fail_sets(&self, fail: bool) {
        self.fail_sets.store(fail, Ordering::SeqCst);
    }

    /// Keys passed to `set`, in order.
    pub fn written(&self) -> Vec<String> {
        self.written.lock().unwrap().clone()
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
        self.inner.ping().await
    }
    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<()> {
        if self.fail_sets.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("test: writes failing".into()));
        }
        self.written.lock().unwrap().push(key.to_string());
        self.inner.set(key, value, ttl).await
    }
    async fn set_nx(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<bool> {
        self.inner.set_nx(key, value, ttl).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Bytes,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        self.inner.compare_and_set(key, expected, new, ttl).await
    }
    async fn del(&self, key: &str) -> StoreResult<bool> {
        self.inner.del(key).await
    }
    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.inner.incr_by(key, delta).await
    }
    async fn get_i64(&self, key: &str) -> StoreResult<i64> {
        self.inner.get_i64(key).await
    }
    async fn adopt_counter(
        &self,
        from: &str,
        seen: &[u8],
        to: &str,
        value: i64,
        marker: &str,
    ) -> StoreResult<Adoption> {
        self.inner
            .adopt_counter(from, seen, to, value, marker)
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
        self.inner
            .idempotent_apply(counter, op, idem_key, fingerprint, ttl)
            .await
    }
    async fn lease_acquire(
        &self,
        pool: &str,
        holder: &str,
        capacity: u32,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.inner.lease_acquire(pool, holder, capacity, ttl).await
    }
    async fn lease_release(&self, pool: &str, holder: &str) -> StoreResult<()> {
        self.inner.lease_release(pool, holder).await
    }
    async fn lease_count(&self, pool: &str) -> StoreResult<u32> {
        self.inner.lease_count(pool).await
    }
    async fn lease_holders(&self, pool: &str) -> StoreResult<Vec<String>> {
        self.inner.lease_holders(pool).await
    }
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        self.inner.rate_limit(key, limit, window).await
    }
    async fn rate_limit_beside(
        &self,
        anchor: &str,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        self.inner
            .rate_limit_beside(anchor, key, limit, window)
            .await
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
        self.inner
            .limited_apply(rate, counter, op, idem_key, fingerprint, ttl)
            .await
    }
}
