//! The read path: `GET /todos?limit=N` served as pre-encoded bytes.
//!
//! Tiers: a per-node near-cache (this file), then Redis when configured
//! (`todos:list:{ver}:{limit}`), then the database. Freshness comes from one shared
//! version counter ([`Version`]: in Redis, or in the database when the store is in-process)
//! that the worker bumps after every applied batch, and `floodgate seed` after seeding:
//! - every entry is tagged with the version read *before* its database query, so its bytes
//!   are never older than its tag and a late fill can never pass for a newer version;
//! - an entry is served only while its tag equals the version this node last confirmed,
//!   and a background poller re-confirms it every CACHE_STALENESS_MS/2 (never per request),
//!   so no node serves an old list for longer than CACHE_STALENESS_MS after a bump;
//! - concurrent misses for one (version, limit) share one fill (a `OnceCell`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use floodgate_db::{Db, DbResult};
use floodgate_store::SharedStore;
use metrics::Counter;
use parking_lot::RwLock;
use tokio::sync::OnceCell;

use crate::keys::Keys;
use crate::repo;
use crate::version::{Version, VersionError};

/// "No version confirmed": nothing is served from the near-cache.
const UNKNOWN: u64 = u64::MAX;
/// Distinct limits and total bytes the near-cache holds per version; beyond that a miss is
/// still single-flighted and served, just not kept (odd limits cannot exhaust memory).
const MAX_SLOTS: usize = 256;
const MAX_BYTES: usize = 256 << 20;

struct Slot {
    ver: u64,
    cell: Arc<OnceCell<Bytes>>,
}

struct Counters {
    near: Counter,
    store: Counter,
    miss: Counter,
}

pub struct ListCache {
    db: Db,
    store: SharedStore,
    /// Lists go to the store only when it is shared (Redis), not into the in-process one.
    shared_tier: bool,
    keys: Keys,
    version: Version,
    ttl: Duration,
    known: AtomicU64,
    slots: RwLock<HashMap<u64, Slot>>,
    bytes: AtomicUsize,
    /// Database queries made for lists (tests check single-flight with it).
    db_fills: AtomicU64,
    counters: Counters,
}

impl ListCache {
    pub fn new(db: Db, store: SharedStore, keys: Keys, ttl: Duration) -> Self {
        let shared_tier = store.is_shared();
        let version = Version::new(&store, &db, &keys);
        ListCache {
            db,
            store,
            shared_tier,
            version,
            keys,
            ttl,
            known: AtomicU64::new(UNKNOWN),
            slots: RwLock::new(HashMap::new()),
            bytes: AtomicUsize::new(0),
            db_fills: AtomicU64::new(0),
            counters: Counters {
                near: metrics::counter!("todos_cache_hits_total", "tier" => "near"),
                store: metrics::counter!("todos_cache_hits_total", "tier" => "store"),
                miss: metrics::counter!("todos_cache_misses_total"),
            },
        }
    }

    /// Starts the version poller; it stops by itself once the cache is dropped. It starts
    /// reading once `migrated` is set (the version may live in a table not made yet).
    pub fn start_poller(self: &Arc<Self>, staleness: Duration, migrated: Arc<AtomicBool>) {
        let every = (staleness / 2).max(Duration::from_millis(1));
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(poll_loop(Arc::downgrade(self), every, migrated));
            }
            // Without a runtime nothing is ever confirmed: every read asks the store.
            Err(_) => tracing::warn!("todos cache poller not started: no async runtime"),
        }
    }

    /// The hot path: the bytes for `limit` if this node holds them for the confirmed version.
    pub fn hit(&self, limit: u64) -> Option<Bytes> {
        let known = self.known.load(Ordering::Acquire);
        if known == UNKNOWN {
            return None;
        }
        let slots = self.slots.read();
        let slot = slots.get(&limit)?;
        if slot.ver != known {
            return None;
        }
        let bytes = slot.cell.get()?.clone();
        drop(slots);
        self.counters.near.increment(1);
        Some(bytes)
    }

    pub async fn get(&self, limit: u64) -> DbResult<Bytes> {
        if let Some(b) = self.hit(limit) {
            return Ok(b);
        }
        self.miss(limit).await
    }

    async fn miss(&self, limit: u64) -> DbResult<Bytes> {
        let known = self.known.load(Ordering::Acquire);
        let ver = if known != UNKNOWN {
            known
        } else {
            match self.read_version().await {
                Ok(v) => v,
                Err(e) => {
                    // Store down: serve from the database, keep nothing (no version to tag).
                    tracing::debug!(error = %e, "todos version unreadable; reading the database");
                    self.counters.miss.increment(1);
                    return repo::list_json(&self.db, limit).await;
                }
            }
        };
        let cell = self.cell_for(ver, limit);
        let bytes = cell.get_or_try_init(|| self.fill(ver, limit)).await?;
        Ok(bytes.clone())
    }

    /// The shared fill for (ver, limit), kept in the map when there is room.
    fn cell_for(&self, ver: u64, limit: u64) -> Arc<OnceCell<Bytes>> {
        let mut slots = self.slots.write();
        if let Some(slot) = slots.get(&limit) {
            if slot.ver == ver {
                return slot.cell.clone();
            }
        }
        let cell = Arc::new(OnceCell::new());
        let full = slots.len() >= MAX_SLOTS || self.bytes.load(Ordering::Relaxed) >= MAX_BYTES;
        if !full || slots.contains_key(&limit) {
            slots.insert(
                limit,
                Slot {
                    ver,
                    cell: cell.clone(),
                },
            );
        }
        cell
    }

    async fn fill(&self, ver: u64, limit: u64) -> DbResult<Bytes> {
        if self.shared_tier {
            match self.store.get(&self.keys.list(ver, limit)).await {
                Ok(Some(b)) => {
                    self.counters.store.increment(1);
                    self.bytes.fetch_add(b.len(), Ordering::Relaxed);
                    return Ok(b);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "todos list not read from the store"),
            }
        }
        self.counters.miss.increment(1);
        self.db_fills.fetch_add(1, Ordering::Relaxed);
        let bytes = repo::list_json(&self.db, limit).await?;
        self.bytes.fetch_add(bytes.len(), Ordering::Relaxed);
        if self.shared_tier {
            self.share(ver, limit, bytes.clone());
        }
        Ok(bytes)
    }

    /// Offers the list to other nodes, in the background so the response does not wait; only
    /// when no write was applied while the query ran (a newer version makes it useless).
    fn share(&self, ver: u64, limit: u64, bytes: Bytes) {
        let store = self.store.clone();
        let version = self.version.clone();
        let key = self.keys.list(ver, limit);
        let ttl = self.ttl;
        tokio::spawn(async move {
            match version.read().await {
                Ok(now) if now == ver => {
                    if let Err(e) = store.set(&key, bytes, Some(ttl)).await {
                        tracing::debug!(error = %e, "todos list not shared");
                    }
                }
                _ => {}
            }
        });
    }

    async fn read_version(&self) -> Result<u64, VersionError> {
        self.version.read().await
    }

    /// Records the version the poller just read; entries of other versions are dropped.
    fn confirm(&self, ver: u64) {
        let old = self.known.swap(ver, Ordering::AcqRel);
        if old != ver {
            let mut slots = self.slots.write();
            slots.retain(|_, s| s.ver == ver);
            let kept: usize = slots
                .values()
                .filter_map(|s| s.cell.get())
                .map(Bytes::len)
                .sum();
            self.bytes.store(kept, Ordering::Relaxed);
        }
    }

    fn unconfirm(&self) {
        self.known.store(UNKNOWN, Ordering::Release);
    }
}

async fn poll_loop(cache: Weak<ListCache>, every: Duration, migrated: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let Some(cache) = cache.upgrade() else { return };
        if !migrated.load(Ordering::Acquire) {
            continue;
        }
        match tokio::time::timeout(every, cache.read_version()).await {
            Ok(Ok(v)) => {
                if failing {
                    tracing::info!("todos version readable again");
                    failing = false;
                }
                cache.confirm(v);
            }
            outcome => {
                // Cannot confirm: stop serving from the near-cache rather than risk old bytes.
                if !failing {
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_string(),
                    };
                    tracing::warn!(error = %why, "todos version unreadable; near-cache off");
                    failing = true;
                }
                cache.unconfirm();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use floodgate_store::MemoryStore;

    use super::*;

    struct Fixture {
        cache: Arc<ListCache>,
        version: Version,
        db: Db,
        _dir: std::path::PathBuf,
    }

    async fn fixture() -> Fixture {
        let dir = std::env::temp_dir().join(format!("fg-cache-{}", uuid::Uuid::new_v4().simple()));
        let db = Db::connect(Some(&format!("sqlite://{}/c.db", dir.display())))
            .await
            .unwrap();
        db.migrate(&[crate::MIGRATIONS]).await.unwrap();
        // An in-process store: the version lives in the database.
        let store: SharedStore = Arc::new(MemoryStore::new());
        let keys = Keys::for_topic("cache-test");
        let cache = Arc::new(ListCache::new(
            db.clone(),
            store.clone(),
            keys.clone(),
            Duration::from_secs(60),
        ));
        Fixture {
            cache,
            version: Version::new(&store, &db, &keys),
            db,
            _dir: dir,
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self._dir);
        }
    }

    fn count(bytes: &Bytes) -> usize {
        serde_json::from_slice::<Vec<serde_json::Value>>(bytes)
            .unwrap()
            .len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_make_one_query() {
        let f = fixture().await;
        repo::seed(&f.db, 20).await.unwrap();
        f.cache.confirm(0);
        let gets = (0..64).map(|_| {
            let c = f.cache.clone();
            tokio::spawn(async move { c.get(10).await.map(|b| b.len()) })
        });
        let sizes: Vec<usize> = futures::future::join_all(gets)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        assert!(sizes.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(f.cache.db_fills.load(Ordering::Relaxed), 1);
        // Hits from now on.
        assert!(f.cache.hit(10).is_some());
        f.cache.get(10).await.unwrap();
        assert_eq!(f.cache.db_fills.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn late_fill_of_an_old_version_is_never_served() {
        let f = fixture().await;
        repo::seed(&f.db, 5).await.unwrap();
        f.cache.confirm(0);
        let old = f.cache.get(10).await.unwrap();
        assert_eq!(count(&old), 5);
        // A fill for version 0 starts, then a write is applied and the version moves on.
        let late = f.cache.cell_for(0, 10);
        repo::seed(&f.db, 8).await.unwrap();
        f.version.bump().await.unwrap();
        f.cache.confirm(1);
        // The old fill completes after the bump, with bytes from before it.
        late.set(old.clone()).ok();
        assert!(
            f.cache.hit(10).is_none(),
            "version-0 bytes served at version 1"
        );
        assert_eq!(count(&f.cache.get(10).await.unwrap()), 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn poller_confirms_new_versions_and_unconfirmed_reads_stay_fresh() {
        let f = fixture().await;
        repo::seed(&f.db, 3).await.unwrap();
        // Not confirmed yet: reads still work (and are not served from the near tier).
        assert_eq!(count(&f.cache.get(10).await.unwrap()), 3);
        assert!(f.cache.hit(10).is_none());
        f.cache
            .start_poller(Duration::from_millis(20), Arc::new(AtomicBool::new(true)));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while f.cache.hit(10).is_none() {
            assert!(tokio::time::Instant::now() < deadline, "never confirmed");
            f.cache.get(10).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        repo::seed(&f.db, 4).await.unwrap();
        f.version.bump().await.unwrap();
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "new version never seen"
            );
            if count(&f.cache.get(10).await.unwrap()) == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[test]
    fn keys_are_namespaced_by_topic() {
        assert_eq!(Keys::for_topic("todo-commands").version(), "todos:ver");
        assert_eq!(
            Keys::for_topic("todo-commands").list(3, 10),
            "todos:list:3:10"
        );
        assert_eq!(Keys::for_topic("t2").version(), "todos:t2:ver");
    }
}
