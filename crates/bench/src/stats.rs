//! Per-worker counters and latency histograms, merged at the end of a run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::conn::ErrorKind;
use crate::error::BenchError;
use crate::timeline::Timeline;

/// Latencies are recorded in microseconds, from 1 µs to 1 hour, 3 significant digits.
const HIGHEST_US: u64 = 3_600_000_000;

/// One row of `--csv` output, kept compact because there is one per request.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Intended (open model) or actual send time, µs after the run started.
    pub at_us: u64,
    pub conn: u32,
    pub url: u16,
    /// 0 when the request failed.
    pub status: u16,
    pub elapsed_us: u64,
    pub error: Option<ErrorKind>,
}

/// Everything one worker measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency from the intended send time (closed model: the actual send time).
    pub latency: Histogram<u64>,
    /// Latency from the actual send time; recorded only in the open model.
    pub uncorrected: Histogram<u64>,
    /// Count per status code 100..=999.
    statuses: Vec<u64>,
    errors: [u64; 5],
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub rows: Option<Vec<Row>>,
    /// Per-second counts for the charts over time.
    pub timeline: Timeline,
}

fn histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).map_err(|e| BenchError::Histogram(e.to_string()))
}

impl Stats {
    /// `origin`: when recording starts (second 0 of the timeline).
    pub fn new(keep_rows: bool, origin: Instant) -> Result<Self, BenchError> {
        Ok(Self {
            latency: histogram()?,
            uncorrected: histogram()?,
            statuses: vec![0; 1000],
            errors: [0; 5],
            bytes_read: 0,
            bytes_written: 0,
            rows: keep_rows.then(Vec::new),
            timeline: Timeline::new(origin),
        })
    }

    /// A response that arrived at `at`.
    pub fn record_response(&mut self, status: u16, latency: Duration, at: Instant) {
        if let Some(slot) = self.statuses.get_mut(usize::from(status)) {
            *slot += 1;
        }
        let us = micros(latency);
        self.latency.saturating_record(us);
        self.timeline.response(at, status, us);
    }

    pub fn record_uncorrected(&mut self, latency: Duration) {
        self.uncorrected.saturating_record(micros(latency));
    }

    pub fn record_error(&mut self, kind: ErrorKind, count: u64, at: Instant) {
        self.errors[kind as usize] += count;
        self.timeline.error(at, kind, count);
    }

    pub fn status(&self, code: u16) -> u64 {
        self.statuses.get(usize::from(code)).copied().unwrap_or(0)
    }

    /// (code, count) for every code seen, ascending.
    pub fn statuses(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(code, &n)| (code as u16, n))
    }

    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize]
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn responses(&self) -> u64 {
        self.statuses.iter().sum()
    }

    /// Responses with a 2xx status.
    pub fn successes(&self) -> u64 {
        self.statuses[200..300].iter().sum()
    }

    pub fn merge(&mut self, other: Stats) {
        // Same bounds on both sides, so adding cannot fail; saturate if it ever does.
        if self.latency.add(&other.latency).is_err() {
            other.latency.iter_recorded().for_each(|v| {
                self.latency
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value())
            });
        }
        if self.uncorrected.add(&other.uncorrected).is_err() {
            other.uncorrected.iter_recorded().for_each(|v| {
                self.uncorrected
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value())
            });
        }
        for (mine, theirs) in self.statuses.iter_mut().zip(&other.statuses) {
            *mine += theirs;
        }
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        self.timeline.merge(&other.timeline);
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        if let (Some(mine), Some(theirs)) = (&mut self.rows, other.rows) {
            mine.extend(theirs);
        }
    }
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Counters shared with the progress line, updated once per batch.
#[derive(Debug, Default)]
pub struct Live {
    pub responses: AtomicU64,
    pub errors: AtomicU64,
}

impl Live {
    pub fn add(&self, responses: u64, errors: u64) {
        if responses > 0 {
            self.responses.fetch_add(responses, Ordering::Relaxed);
        }
        if errors > 0 {
            self.errors.fetch_add(errors, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_counts_and_histograms() {
        let t0 = Instant::now();
        let mut a = Stats::new(false, t0).unwrap();
        let mut b = Stats::new(false, t0).unwrap();
        a.record_response(200, Duration::from_millis(10), t0);
        b.record_response(500, Duration::from_millis(30), t0);
        b.record_response(200, Duration::from_millis(20), t0);
        b.record_error(ErrorKind::Timeout, 2, t0);
        a.merge(b);
        assert_eq!(a.responses(), 3);
        assert_eq!(a.status(200), 2);
        assert_eq!(a.successes(), 2);
        assert_eq!(a.errors(ErrorKind::Timeout), 2);
        assert_eq!(a.latency.len(), 3);
        let max_ms = a.latency.max() / 1000;
        assert!((29..=30).contains(&max_ms), "{max_ms}");
        assert_eq!(a.statuses().collect::<Vec<_>>(), [(200, 2), (500, 1)]);
    }
}
