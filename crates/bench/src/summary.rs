//! The merged result of a load run and what can be derived from it.

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use crate::stats::Stats;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    pub min: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Self {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
            min: ms(histogram.min()),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub stats: Stats,
    /// Measured time (warm-up excluded).
    pub elapsed: Duration,
    /// Wall-clock time when the load started (CSV timestamps count from here).
    pub started_at: SystemTime,
    pub urls: Vec<String>,
    pub connections: usize,
    pub threads: usize,
    pub pipelining: usize,
    pub rate: Option<f64>,
    pub method: String,
    /// Load before recording started.
    pub warmup: Duration,
}

impl Summary {
    /// Requests that ended, with a response or an error.
    pub fn total_requests(&self) -> u64 {
        self.stats.responses() + self.stats.total_errors()
    }

    /// Responses per second.
    pub fn rps(&self) -> f64 {
        per_second(self.stats.responses(), self.elapsed)
    }

    pub fn bytes_read_per_second(&self) -> f64 {
        per_second(self.stats.bytes_read, self.elapsed)
    }

    /// 2xx responses as a percentage of all requests.
    pub fn success_rate(&self) -> f64 {
        match self.total_requests() {
            0 => 0.0,
            total => self.stats.successes() as f64 * 100.0 / total as f64,
        }
    }

    /// Latency from the intended send time (the actual one in the closed model).
    pub fn latency(&self) -> Option<Percentiles> {
        Percentiles::of(&self.stats.latency)
    }

    /// The latency distribution as an HDR percentile curve: (percentile, ms) at
    /// percentiles 1 - 10^(-k/10), k = 0..=60 (0 .. 99.9999), then the maximum.
    pub fn latency_curve(&self) -> Vec<(f64, f64)> {
        let h = &self.stats.latency;
        if h.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<(f64, f64)> = (0..=60)
            .map(|k| {
                let q = 1.0 - 10f64.powf(-f64::from(k) / 10.0);
                (q * 100.0, h.value_at_quantile(q) as f64 / 1000.0)
            })
            .collect();
        out.push((100.0, h.max() as f64 / 1000.0));
        out
    }

    /// Latency from the actual send time; only the open model records it.
    pub fn uncorrected(&self) -> Option<Percentiles> {
        self.rate
            .and_then(|_| Percentiles::of(&self.stats.uncorrected))
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    match elapsed.as_secs_f64() {
        secs if secs > 0.0 => count as f64 / secs,
        _ => 0.0,
    }
}
