//! One node's figures for the last second: the core's lock-free live counters for the
//! request-level charts, and each service panel's values from the `/metrics` text.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use floodgate_core::metrics::process_usage;
use floodgate_core::panel::{PanelSource, Samples, Window};
use floodgate_core::stats::{Snapshot, STATS};
use serde_json::{json, Map, Value};

/// How many past metric texts are kept for percentiles of rare events (see `Window`).
const LONGER: usize = 10;

/// Who this node is, as shown in its row.
#[derive(Debug, Clone)]
pub struct Identity {
    pub node: String,
    /// "serve", "serve --no-workers" or "worker".
    pub role: &'static str,
    /// The address it serves HTTP on.
    pub addr: String,
}

pub struct Sampler {
    me: Identity,
    panels: Vec<Arc<dyn PanelSource>>,
    last: Snapshot,
    last_cpu: f64,
    last_at: Instant,
    /// Parsed `/metrics` texts, newest last (empty when metrics are off).
    texts: VecDeque<Samples>,
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Sampler {
    pub fn new(me: Identity, panels: Vec<Arc<dyn PanelSource>>) -> Self {
        let mut texts = VecDeque::with_capacity(LONGER + 1);
        texts.push_back(current_metrics());
        Sampler {
            me,
            panels,
            last: STATS.snapshot(),
            last_cpu: process_usage().map(|u| u.0).unwrap_or(0.0),
            last_at: Instant::now(),
            texts,
        }
    }

    pub fn node(&self) -> &str {
        &self.me.node
    }

    /// Each panel's layout, in the order of the samples' values.
    pub fn layouts(&self) -> Value {
        json!(self.panels.iter().map(|p| p.layout()).collect::<Vec<_>>())
    }

    /// Describes what happened since the previous call.
    pub async fn sample(&mut self) -> Value {
        let now = STATS.snapshot();
        let secs = self.last_at.elapsed().as_secs_f64().max(1e-3);
        let d = now.since(&self.last);
        let (cpu, rss) = process_usage().unwrap_or((self.last_cpu, 0));
        let cpu_percent = ((cpu - self.last_cpu) / secs * 100.0).max(0.0);
        self.last = now;
        self.last_cpu = cpu;
        self.last_at = Instant::now();
        let panels = self.panels(secs).await;
        let per_sec = |n: u64| n as f64 / secs;
        json!({
            "node": self.me.node,
            "role": self.me.role,
            "addr": self.me.addr,
            "ts": unix_ms(),
            "rps": per_sec(d.total()),
            "latency_ms": {"p50": d.quantile(0.50) * 1e3, "p95": d.quantile(0.95) * 1e3, "p99": d.quantile(0.99) * 1e3},
            "status": {"1xx": per_sec(d.by_class[0]), "2xx": per_sec(d.by_class[1]), "3xx": per_sec(d.by_class[2]), "4xx": per_sec(d.by_class[3]), "5xx": per_sec(d.by_class[4])},
            "in_flight": d.in_flight,
            "admission_rejections": per_sec(d.rejections),
            "queue_lag": d.queue_lag,
            "cpu_percent": cpu_percent,
            "rss_bytes": rss,
            "panels": panels,
        })
    }

    async fn panels(&mut self, secs: f64) -> Value {
        self.texts.push_back(current_metrics());
        if self.texts.len() > LONGER + 1 {
            self.texts.pop_front();
        }
        let n = self.texts.len();
        let (Some(now), Some(before), Some(longer)) = (
            self.texts.get(n - 1),
            self.texts.get(n.saturating_sub(2)),
            self.texts.front(),
        ) else {
            return Value::Object(Map::new());
        };
        let w = Window {
            now,
            before,
            secs,
            longer,
        };
        let mut out = Map::new();
        for p in &self.panels {
            let values = p.values(&w).await;
            // Rounded: the values travel through the store and the page every second.
            let values: Vec<f64> = values.iter().map(|v| (v * 100.0).round() / 100.0).collect();
            out.insert(p.layout().id.to_string(), json!(values));
        }
        Value::Object(out)
    }
}

/// This process's `/metrics` text, parsed (nothing when metrics are off).
fn current_metrics() -> Samples {
    floodgate_core::metrics::render()
        .map(|text| Samples::parse(&text))
        .unwrap_or_default()
}
