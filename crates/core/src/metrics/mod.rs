//! The Prometheus recorder (installed once per process), process CPU/memory gauges, and
//! the per-route request metrics (`routes`) the HTTP middleware records.

pub(crate) mod routes;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

pub(crate) const LATENCY_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Histogram buckets a service wants for one of its metrics (other histograms ending in
/// `_seconds` get [`LATENCY_SECONDS`]).
#[derive(Debug, Clone, Copy)]
pub struct Buckets {
    /// The metric's full name.
    pub metric: &'static str,
    pub edges: &'static [f64],
}

/// Installs the global recorder on first call and returns its handle. Tests that start
/// several servers in one process share it.
pub fn install() -> PrometheusHandle {
    install_with(&[])
}

/// [`install`] with services' own histogram buckets (the binary passes every service's).
/// Only the first call of a process installs, so its buckets are the ones used.
pub fn install_with(services: &[Buckets]) -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_SECONDS);
            for b in services {
                builder = builder.and_then(|builder| {
                    builder.set_buckets_for_metric(Matcher::Full(b.metric.into()), b.edges)
                });
            }
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // Another recorder may already be set (e.g. by a test harness); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Renders the exposition text, refreshing the process gauges first; None when no
/// recorder was installed (metrics are off).
pub fn render() -> Option<String> {
    let handle = HANDLE.get()?;
    record_process();
    let mut text = handle.render();
    text.push_str(&routes::render());
    Some(text)
}

/// Keeps histograms compact; call from a background task.
pub async fn upkeep_loop() {
    let handle = install();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
        record_process();
    }
}

/// CPU seconds and resident memory of this process, from /proc (Linux).
pub fn process_usage() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the ")" that ends the command name; utime and stime are 14th and 15th.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Linux reports in USER_HZ (100 on every mainstream kernel) and 4 KiB pages.
    Some((ticks / 100.0, rss_pages * 4096))
}

fn record_process() {
    metrics::gauge!("http_requests_in_flight").set(crate::stats::STATS.snapshot().in_flight as f64);
    if let Some((cpu, rss)) = process_usage() {
        metrics::gauge!("process_cpu_seconds_total").set(cpu);
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
}
