//! Test plumbing: backends from the environment and unique key prefixes.

use std::sync::Arc;

use floodgate_store::{MemoryStore, RedisStore, SharedStore, Store};

pub const REDIS_VAR: &str = "FLOODGATE_TEST_REDIS_URL";

pub use floodgate_testkit::skip;

pub fn memory_store() -> SharedStore {
    Arc::new(MemoryStore::new())
}

pub async fn redis_store() -> Option<SharedStore> {
    let url = match std::env::var(REDIS_VAR) {
        Ok(u) if !u.is_empty() => u,
        _ => {
            skip(REDIS_VAR);
            return None;
        }
    };
    let store = RedisStore::connect(&url).await.expect("valid redis url");
    store.ping().await.expect("test redis answers");
    Some(Arc::new(store))
}

/// A fresh namespace per test.
pub fn prefix() -> String {
    format!("fgtest:{}:", uuid::Uuid::new_v4())
}
