//! Lock-free live counters for the dashboard: totals by status class, in-flight requests, a
//! log-bucketed latency histogram, rejections and queue lag. The dashboard reads
//! them once a second and works with the differences, so recording is a few relaxed atomic
//! adds per request and never allocates.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Buckets cover 1 µs .. ~70 s with four buckets per power of two (≤ 19% relative error).
const BUCKETS: usize = 26 * 4;

pub struct LiveStats {
    by_class: [AtomicU64; 5],
    in_flight: AtomicI64,
    latency: [AtomicU64; BUCKETS],
    /// Requests turned away by a service's admission control (today the gift-code
    /// limiter). Generic rather than the gift-code service's own: the dashboard (which
    /// depends on core alone) samples every node's `LiveStats` once a second.
    rejections: AtomicU64,
}

pub static STATS: LiveStats = LiveStats::new();

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

impl LiveStats {
    const fn new() -> Self {
        LiveStats {
            by_class: [ZERO; 5],
            in_flight: AtomicI64::new(0),
            latency: [ZERO; BUCKETS],
            rejections: AtomicU64::new(0),
        }
    }

    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    pub fn request_finished(&self, status: u16, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Relaxed);
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Relaxed);
        self.latency[bucket_of(elapsed)].fetch_add(1, Relaxed);
    }

    /// A request turned away by admission control (answered 429 without being served).
    pub fn rejected(&self) {
        self.rejections.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            by_class: std::array::from_fn(|i| self.by_class[i].load(Relaxed)),
            in_flight: self.in_flight.load(Relaxed).max(0),
            latency: std::array::from_fn(|i| self.latency[i].load(Relaxed)),
            rejections: self.rejections.load(Relaxed),
            // The bus keeps this process's consumer lag; nothing to copy here.
            queue_lag: floodgate_bus::total_lag(),
        }
    }
}

fn bucket_of(d: Duration) -> usize {
    let us = d.as_micros().max(1) as u64;
    let log2 = 63 - us.leading_zeros() as usize;
    // The two bits below the top one pick the quarter within the power of two.
    let quarter = if log2 >= 2 {
        ((us >> (log2 - 2)) & 3) as usize
    } else {
        0
    };
    (log2 * 4 + quarter).min(BUCKETS - 1)
}

/// Upper edge of a bucket, in seconds.
fn bucket_upper(i: usize) -> f64 {
    let log2 = i / 4;
    if log2 < 2 {
        // Below 4 µs a bucket spans the whole power of two.
        return (1u64 << (log2 + 1)) as f64 / 1e6;
    }
    let quarter = (i % 4) as f64;
    (1u64 << log2) as f64 * (1.0 + (quarter + 1.0) / 4.0) / 1e6
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub by_class: [u64; 5],
    pub in_flight: i64,
    pub latency: [u64; BUCKETS],
    pub rejections: u64,
    pub queue_lag: i64,
}

impl Snapshot {
    pub fn total(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            by_class: std::array::from_fn(|i| self.by_class[i].saturating_sub(earlier.by_class[i])),
            in_flight: self.in_flight,
            latency: std::array::from_fn(|i| self.latency[i].saturating_sub(earlier.latency[i])),
            rejections: self.rejections.saturating_sub(earlier.rejections),
            queue_lag: self.queue_lag,
        }
    }

    /// Latency quantile `q` (0..1) in seconds; 0 when nothing was recorded.
    pub fn quantile(&self, q: f64) -> f64 {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper(i);
            }
        }
        bucket_upper(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_follow_the_recorded_latencies() {
        let s = LiveStats::new();
        let before = s.snapshot();
        for _ in 0..90 {
            s.request_started();
            s.request_finished(200, Duration::from_micros(1000));
        }
        for _ in 0..10 {
            s.request_started();
            s.request_finished(503, Duration::from_millis(100));
        }
        let d = s.snapshot().since(&before);
        assert_eq!(d.total(), 100);
        assert_eq!(d.by_class[1], 90);
        assert_eq!(d.by_class[4], 10);
        let p50 = d.quantile(0.5);
        let p99 = d.quantile(0.99);
        assert!((0.001..0.0013).contains(&p50), "p50 {p50}");
        assert!((0.1..0.125).contains(&p99), "p99 {p99}");
        assert_eq!(d.in_flight, 0);
    }

    #[tokio::test]
    async fn queue_lag_comes_from_the_bus_consumers() {
        use floodgate_bus::{Bus, MemoryBus, Outgoing};
        let bus = MemoryBus::new();
        // No other test here has bus consumers, so the process-wide lag is ours alone.
        let before = floodgate_bus::total_lag();
        let consumer = bus.subscribe("stats-lag", "g").await.unwrap();
        for _ in 0..3 {
            let msg = Outgoing {
                topic: "stats-lag",
                payload: b"x",
                ..Outgoing::default()
            };
            bus.publish(msg).await.unwrap();
        }
        assert_eq!(STATS.snapshot().queue_lag, before + 3);
        drop(consumer);
        assert_eq!(STATS.snapshot().queue_lag, before);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for us in [1u64, 2, 3, 5, 8, 100, 1_000, 65_536, 1_000_000, 60_000_000] {
            let b = bucket_of(Duration::from_micros(us));
            assert!(b >= last);
            assert!(bucket_upper(b) >= us as f64 / 1e6, "{us}");
            last = b;
        }
    }
}
