//! The segmented sieve against trial division like the seed's Celery task, for n = 5000
//! (the largest size in the seed's Locust file) and, for the sieve, n = 1,000,000.
//!
//!     cargo run --release -p floodgate-primes --example sieve_vs_trial

use std::hint::black_box;
use std::time::{Duration, Instant};

use floodgate_primes::first_primes;

#[path = "../tests/common/trial.rs"]
mod trial;
use trial::trial_division;

/// Median of `runs` timings.
fn median(runs: usize, mut f: impl FnMut() -> Vec<u64>) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let n = 5000;
    assert_eq!(first_primes(n), trial_division(n), "both agree");
    let sieve = median(101, || first_primes(n));
    let trial = median(101, || trial_division(n));
    println!("n = {n}: sieve {sieve:?}, trial division {trial:?} (median of 101 runs)");
    let million = median(11, || first_primes(1_000_000));
    println!("n = 1000000: sieve {million:?} (median of 11 runs)");
}
