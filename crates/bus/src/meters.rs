//! The bus's Prometheus series. Handles are resolved once per topic, consumer or group, so
//! sending and receiving only bump atomics. A handle resolved before the process installs
//! its recorder stays a no-op, which is why none is made before the first publish/subscribe.
//!
//! - `bus_messages_produced_total{topic}`: publishes the broker acknowledged.
//! - `bus_messages_consumed_total{topic,group}`: messages handed out by `recv`.
//! - `bus_errors_total{op}`: failed `publish`, `consume` (recv) and `commit` calls.
//! - `bus_consumer_lag{topic,group}`: messages not yet committed by the group, as seen by
//!   this process's consumers (summed over their partitions).

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use metrics::{Counter, Gauge};

/// Sum of every live `LagShare`: what this process's consumers last observed.
static TOTAL_LAG: AtomicI64 = AtomicI64::new(0);

/// Messages waiting for this process's consumers (the sum of their `bus_consumer_lag`).
pub fn total_lag() -> i64 {
    TOTAL_LAG.load(Relaxed).max(0)
}

pub(crate) fn produced(topic: &str) -> Counter {
    metrics::counter!("bus_messages_produced_total", "topic" => topic.to_owned())
}

pub(crate) fn consumed(topic: &str, group: &str) -> Counter {
    metrics::counter!(
        "bus_messages_consumed_total",
        "topic" => topic.to_owned(),
        "group" => group.to_owned()
    )
}

#[derive(Clone, Copy)]
pub(crate) enum Op {
    Publish,
    Consume,
    Commit,
}

/// Errors are rare, so the handle is looked up each time (static labels, no allocation).
pub(crate) fn error(op: Op) {
    let op = match op {
        Op::Publish => "publish",
        Op::Consume => "consume",
        Op::Commit => "commit",
    };
    metrics::counter!("bus_errors_total", "op" => op).increment(1);
}

/// One reporter's part of `bus_consumer_lag{topic,group}` and of [`total_lag`]. Kafka
/// consumers of one group in a process each own the partitions assigned to them, so each
/// adds its own lag rather than setting the gauge (the in-process bus keeps one share per
/// group); dropping the share takes it back out.
pub(crate) struct LagShare {
    gauge: Gauge,
    last: i64,
}

impl LagShare {
    pub(crate) fn new(topic: &str, group: &str) -> Self {
        LagShare {
            gauge: metrics::gauge!(
                "bus_consumer_lag",
                "topic" => topic.to_owned(),
                "group" => group.to_owned()
            ),
            last: 0,
        }
    }

    pub(crate) fn set(&mut self, lag: i64) {
        let lag = lag.max(0);
        let delta = lag - self.last;
        if delta == 0 {
            return;
        }
        self.last = lag;
        TOTAL_LAG.fetch_add(delta, Relaxed);
        self.gauge.increment(delta as f64);
    }
}

impl Drop for LagShare {
    fn drop(&mut self) {
        self.set(0);
    }
}

// Shared with the integration tests.
#[cfg(test)]
#[path = "../tests/common/recorder.rs"]
pub(crate) mod testing;
