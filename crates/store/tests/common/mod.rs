//! Test plumbing: backends from the environment and unique key prefixes.

use std::sync::Arc;

use floodgate_store::{Backend, Kv, MemoryStore, RedisStore, SharedStore};

pub const REDIS_VAR: &str = "FLOODGATE_TEST_REDIS_URL";
pub const REDIS_CLUSTER_VAR: &str = "FLOODGATE_TEST_REDIS_CLUSTER_URL";

pub fn memory_store() -> SharedStore {
    Arc::new(MemoryStore::new())
}

pub async fn redis_store() -> Option<SharedStore> {
    store_at(REDIS_VAR).await
}

pub async fn redis_cluster_store() -> Option<SharedStore> {
    let store = store_at(REDIS_CLUSTER_VAR).await?;
    assert_eq!(store.backend(), Backend::RedisCluster);
    Some(store)
}

async fn store_at(var: &str) -> Option<SharedStore> {
    let url = floodgate_testkit::env_or_skip(var)?;
    let store = RedisStore::connect(&url).await.expect("valid redis url");
    store.ping().await.expect("test redis answers");
    Some(Arc::new(store))
}

/// A fresh namespace per test.
pub fn prefix() -> String {
    format!("fgtest:{}:", uuid::Uuid::new_v4())
}
