//! A `metrics` recorder for tests. Unlike `metrics_util`'s debugging recorder it reads without
//! resetting, so concurrent tests (told apart by their topic labels) do not disturb each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};

type Cells = Mutex<HashMap<Key, Arc<AtomicU64>>>;

#[derive(Default)]
pub struct TestRecorder {
    counters: Cells,
    gauges: Cells,
}

fn cell(map: &Cells, key: &Key) -> Arc<AtomicU64> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key.clone()).or_default().clone()
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(k.to_string(), v.to_string()))
        .collect();
    Key::from_parts(name.to_string(), labels)
}

impl TestRecorder {
    /// The process-wide recorder, installed on first use: call it before the bus makes handles.
    pub fn global() -> &'static TestRecorder {
        static REC: OnceLock<&'static TestRecorder> = OnceLock::new();
        REC.get_or_init(|| {
            let rec: &'static TestRecorder = Box::leak(Box::default());
            metrics::set_global_recorder(rec).expect("no other recorder in bus tests");
            rec
        })
    }

    /// Labels in the order the bus declares them (topic, then group).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        cell(&self.counters, &key(name, labels)).load(Ordering::Acquire)
    }

    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        f64::from_bits(cell(&self.gauges, &key(name, labels)).load(Ordering::Acquire))
    }

    pub fn lag(&self, topic: &str, group: &str) -> f64 {
        self.gauge("bus_consumer_lag", &[("topic", topic), ("group", group)])
    }

    /// Polls `bus_consumer_lag{topic,group}` until it equals `want` (panics after `wait`).
    pub async fn wait_lag(&self, topic: &str, group: &str, want: f64, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.lag(topic, group);
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "lag of {topic}/{group} is {got}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(cell(&self.counters, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(cell(&self.gauges, key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
