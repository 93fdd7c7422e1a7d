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
/// The seed's buckets for prime task durations (SPEC section 3).
const PRIME_TASK_MS: &[f64] = &[
    10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
];

/// Installs the global recorder on first call and returns its handle. Tests that start
/// several servers in one process share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("prime_task_duration_milliseconds".into()),
                        PRIME_TASK_MS,
                    )
                });
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
