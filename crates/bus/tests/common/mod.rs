//! Helpers shared by the bus integration tests.
#![allow(dead_code)]

pub mod recorder;
pub mod tansu;

use std::collections::HashSet;
use std::time::Duration;

use floodgate_bus::{Bus, BusError, Consumer, Message, Outgoing};

/// Long enough for a Kafka group join and rebalance; only hit when something is broken.
pub const WAIT: Duration = Duration::from_secs(45);

/// The value of `var`, or `None` after printing the skip notice (panics instead when
/// FLOODGATE_REQUIRE_SERVICES=1).
pub fn service_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("FLOODGATE_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("skipped: {var} not set");
            }
            eprintln!("skipped: {var} not set");
            None
        }
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn publish(bus: &dyn Bus, topic: &str, key: &str, payload: &str) {
    bus.publish(Outgoing {
        topic,
        key: Some(key.as_bytes()),
        payload: payload.as_bytes(),
        headers: &[],
    })
    .await
    .unwrap_or_else(|e| panic!("publish {payload}: {e}"));
}

/// Publishes `{prefix}0`..`{prefix}{n-1}` one by one, keyed `k0`..: one per key.
pub async fn publish_n(bus: &dyn Bus, topic: &str, prefix: &str, n: usize) {
    for i in 0..n {
        publish(bus, topic, &format!("k{i}"), &format!("{prefix}{i}")).await;
    }
}

/// Next message within `wait`; transient broker errors are retried like a worker would.
pub async fn recv_within(c: &mut Box<dyn Consumer>, wait: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, c.recv()).await {
            Err(_) => return None,
            Ok(Ok(m)) => return Some(m),
            Ok(Err(BusError::Unavailable(e))) => {
                eprintln!("recv: transient: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Err(e)) => panic!("recv failed: {e}"),
        }
    }
}

/// Exactly `n` messages, failing the test if they do not all come within `WAIT`.
pub async fn recv_n(c: &mut Box<dyn Consumer>, n: usize) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match recv_within(c, left).await {
            Some(m) => out.push(m),
            None => panic!("got {} of {n} messages in time", out.len()),
        }
    }
    out
}

pub fn payloads(msgs: &[Message]) -> HashSet<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

/// Partition claims in an in-process store: every consumer of the test shares it, as the
/// processes of a cluster share Redis.
pub fn claims() -> std::sync::Arc<dyn floodgate_bus::claims::Claims> {
    use std::sync::{Arc, OnceLock};
    static STORE: OnceLock<floodgate_store::SharedStore> = OnceLock::new();
    let store = STORE.get_or_init(|| Arc::new(floodgate_store::MemoryStore::new()));
    Arc::new(floodgate_bus::claims::StoreClaims(store.clone()))
}
