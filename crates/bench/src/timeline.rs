//! What each second of a run looked like: responses by status class, errors by kind and a
//! compact latency histogram, for the report's charts over time. Eight log buckets per
//! power of two (at most ~9% relative error) keep a second at about 1 KB, so an hour-long
//! run costs a few MB per worker thread; the end-of-run percentiles still come from the
//! exact HDR histogram.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::conn::ErrorKind;

const PER_OCTAVE: usize = 8;
/// 1 µs .. 2^34 µs (~4.8 h).
const BUCKETS: usize = 34 * PER_OCTAVE;

#[derive(Debug, Clone)]
struct Second {
    classes: [u64; 5],
    errors: [u64; 5],
    latency: Box<[u32; BUCKETS]>,
}

impl Second {
    fn new() -> Self {
        Second {
            classes: [0; 5],
            errors: [0; 5],
            latency: Box::new([0; BUCKETS]),
        }
    }

    fn add(&mut self, other: &Second) {
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        for (a, b) in self.latency.iter_mut().zip(other.latency.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    fn responses(&self) -> u64 {
        self.classes.iter().sum()
    }

    /// Upper edge of the bucket holding quantile `q`, in ms; 0 with no responses.
    fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.latency.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.latency.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return bucket_upper_us(i) / 1000.0;
            }
        }
        bucket_upper_us(BUCKETS - 1) / 1000.0
    }
}

fn bucket_of(us: u64) -> usize {
    let us = us.max(1);
    let log2 = 63 - us.leading_zeros() as usize;
    // The three bits below the top one pick the eighth within the power of two.
    let eighth = if log2 >= 3 {
        ((us >> (log2 - 3)) & 7) as usize
    } else {
        // Below 8 µs: exact enough, spread by the low bits.
        ((us << (3 - log2)) & 7) as usize
    };
    (log2 * PER_OCTAVE + eighth).min(BUCKETS - 1)
}

fn bucket_upper_us(i: usize) -> f64 {
    let log2 = (i / PER_OCTAVE) as i32;
    let eighth = (i % PER_OCTAVE) as f64;
    2f64.powi(log2) * (1.0 + (eighth + 1.0) / PER_OCTAVE as f64)
}

#[derive(Debug, Clone)]
pub struct Timeline {
    origin: Instant,
    secs: Vec<Second>,
}

impl Timeline {
    /// Seconds count from `origin` (the end of the warm-up).
    pub fn new(origin: Instant) -> Self {
        Timeline {
            origin,
            secs: Vec::new(),
        }
    }

    fn at(&mut self, at: Instant) -> &mut Second {
        let i = at.saturating_duration_since(self.origin).as_secs() as usize;
        if self.secs.len() <= i {
            self.secs.resize_with(i + 1, Second::new);
        }
        &mut self.secs[i]
    }

    pub fn response(&mut self, at: Instant, status: u16, latency_us: u64) {
        let second = self.at(at);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        second.classes[class] += 1;
        let slot = &mut second.latency[bucket_of(latency_us)];
        *slot = slot.saturating_add(1);
    }

    pub fn error(&mut self, at: Instant, kind: ErrorKind, count: u64) {
        self.at(at).errors[kind as usize] += count;
    }

    pub fn merge(&mut self, other: &Timeline) {
        if self.secs.len() < other.secs.len() {
            self.secs.resize_with(other.secs.len(), Second::new);
        }
        for (mine, theirs) in self.secs.iter_mut().zip(&other.secs) {
            mine.add(theirs);
        }
    }

    /// Column arrays, one entry per second: `t` (seconds after the warm-up), `rps`,
    /// latency `p50`/`p90`/`p99`/`max` in ms, `status` by class and `errors` by kind, per
    /// second. The last second is scaled by its measured part of `elapsed`.
    pub fn json(&self, elapsed: Duration) -> Value {
        // Answers that came in after the measured time (the last in-flight requests) count
        // in its last second rather than as a near-empty second of their own.
        let measured = (elapsed.as_secs_f64().ceil() as usize).max(1);
        let mut secs = self.secs.clone();
        if secs.len() > measured {
            let extra = secs.split_off(measured);
            if let Some(last) = secs.last_mut() {
                extra.iter().for_each(|s| last.add(s));
            }
        }
        let n = secs.len();
        let width = |i: usize| {
            let left = elapsed.as_secs_f64() - i as f64;
            if i + 1 == n && left > 0.05 && left < 1.0 {
                left
            } else {
                1.0
            }
        };
        let column = |f: &dyn Fn(usize, &Second) -> f64| -> Vec<f64> {
            secs.iter()
                .enumerate()
                .map(|(i, s)| (f(i, s) * 1000.0).round() / 1000.0)
                .collect()
        };
        let mut status = Map::new();
        for (k, name) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            status.insert(
                name.to_string(),
                json!(column(&|i, s| s.classes[k] as f64 / width(i))),
            );
        }
        let mut errors = Map::new();
        for kind in ErrorKind::ALL {
            errors.insert(
                kind.name().to_string(),
                json!(column(&|i, s| s.errors[kind as usize] as f64 / width(i))),
            );
        }
        json!({
            "t": (0..n).collect::<Vec<_>>(),
            "rps": column(&|i, s| s.responses() as f64 / width(i)),
            "p50": column(&|_, s| s.quantile_ms(0.50)),
            "p90": column(&|_, s| s.quantile_ms(0.90)),
            "p99": column(&|_, s| s.quantile_ms(0.99)),
            "max": column(&|_, s| s.quantile_ms(1.0)),
            "status": status,
            "errors": errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_hold_their_own_responses_and_errors() {
        let origin = Instant::now();
        let mut a = Timeline::new(origin);
        let mut b = Timeline::new(origin);
        for _ in 0..99 {
            a.response(origin + Duration::from_millis(200), 200, 1_000);
        }
        a.response(origin + Duration::from_millis(900), 503, 100_000);
        b.response(origin + Duration::from_millis(2_500), 200, 5_000);
        b.error(origin + Duration::from_millis(2_600), ErrorKind::Timeout, 3);
        // Answered after the measured 3 s: counted in the last second.
        b.response(origin + Duration::from_millis(3_100), 200, 5_000);
        a.merge(&b);
        let j = a.json(Duration::from_secs(3));
        assert_eq!(j["t"], json!([0, 1, 2]));
        assert_eq!(j["rps"], json!([100.0, 0.0, 2.0]));
        assert_eq!(j["status"]["2xx"], json!([99.0, 0.0, 2.0]));
        assert_eq!(j["status"]["5xx"], json!([1.0, 0.0, 0.0]));
        assert_eq!(j["errors"]["timeout"], json!([0.0, 0.0, 3.0]));
        let p50 = j["p50"][0].as_f64().unwrap();
        assert!((1.0..=1.1).contains(&p50), "p50 {p50}");
        let max = j["max"][0].as_f64().unwrap();
        assert!((100.0..=110.0).contains(&max), "max {max}");
        assert_eq!(j["p99"][1], json!(0.0));
    }

    #[test]
    fn buckets_cover_their_values() {
        let mut last = 0;
        for us in [
            1u64,
            2,
            3,
            7,
            8,
            9,
            100,
            1_000,
            65_536,
            1_000_000,
            3_600_000_000,
        ] {
            let b = bucket_of(us);
            assert!(b >= last, "{us}");
            assert!(bucket_upper_us(b) >= us as f64, "{us} in {b}");
            assert!(bucket_upper_us(b) <= us as f64 * 1.26 + 1.0, "{us} in {b}");
            last = b;
        }
    }
}
