//! The first n primes by a segmented sieve of Eratosthenes over odd numbers.
//!
//! The sieve runs up to a proven upper bound for the n-th prime, one L1-sized segment at a
//! time, so memory stays small (the flags of one segment plus the base primes up to
//! sqrt(bound)) and the work is O(bound log log bound).

/// Flags per segment: 32 KiB fits in the L1 data cache of any current core.
const SEGMENT: usize = 32 * 1024;

/// An upper bound for the n-th prime (n >= 1). Rosser's theorem gives
/// p_n < n (ln n + ln ln n) for n >= 6; below that the 5th prime, 11, bounds them all.
pub fn nth_prime_upper_bound(n: usize) -> u64 {
    if n < 6 {
        return 11;
    }
    let x = n as f64;
    let bound = x * (x.ln() + x.ln().ln());
    // Float rounding could land just under the true value; a few extra numbers cost nothing.
    bound.ceil() as u64 + 2
}

/// The first `n` primes, ascending. `n` is trusted: callers cap it (PRIMES_MAX_N), since the
/// result needs `8 n` bytes.
pub fn first_primes(n: usize) -> Vec<u64> {
    let mut primes = Vec::with_capacity(n);
    if n == 0 {
        return primes;
    }
    primes.push(2);
    let limit = nth_prime_upper_bound(n);
    let base = odd_primes_up_to(limit.isqrt());
    // next[j]: the next odd multiple of base[j] still to cross off; smaller multiples were
    // crossed off by smaller primes, so each prime starts at its square.
    let mut next: Vec<u64> = base.iter().map(|&p| p * p).collect();
    let mut flags = vec![true; SEGMENT];
    // Segment flag i stands for the odd number low + 2i.
    let mut low = 3u64;
    while primes.len() < n && low <= limit {
        let high = (low + 2 * SEGMENT as u64).min(limit + 1);
        // Odd numbers in [low, high), low odd.
        let len = (high - low).div_ceil(2) as usize;
        let seg = &mut flags[..len];
        seg.fill(true);
        for (p, m) in base.iter().zip(next.iter_mut()) {
            if *m >= high {
                continue;
            }
            let step = *p as usize;
            let mut i = ((*m - low) / 2) as usize;
            while i < len {
                seg[i] = false;
                i += step;
            }
            *m = low + 2 * i as u64;
        }
        for (i, &is_prime) in seg.iter().enumerate() {
            if is_prime {
                primes.push(low + 2 * i as u64);
                if primes.len() == n {
                    break;
                }
            }
        }
        low = high;
    }
    primes
}

/// Odd primes up to `max` inclusive, by the plain sieve (max is only sqrt of the bound).
fn odd_primes_up_to(max: u64) -> Vec<u64> {
    let max = max as usize;
    if max < 3 {
        return Vec::new();
    }
    let mut composite = vec![false; max + 1];
    let mut out = Vec::new();
    let mut p = 3;
    while p <= max {
        if !composite[p] {
            out.push(p as u64);
            let mut m = p * p;
            while m <= max {
                composite[m] = true;
                m += 2 * p;
            }
        }
        p += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases() {
        assert!(first_primes(0).is_empty());
        assert_eq!(first_primes(1), vec![2]);
        assert_eq!(first_primes(5), vec![2, 3, 5, 7, 11]);
        assert_eq!(first_primes(6), vec![2, 3, 5, 7, 11, 13]);
    }

    #[test]
    fn segment_boundaries_are_handled() {
        // Enough primes to span several segments; compare against the plain sieve.
        let all: Vec<u64> = std::iter::once(2)
            .chain(odd_primes_up_to(3_000_000))
            .collect();
        let n = all.len();
        assert_eq!(first_primes(n), all);
    }

    #[test]
    fn bound_holds_where_rosser_applies() {
        let primes = first_primes(20_000);
        for n in 6..=primes.len() {
            assert!(primes[n - 1] < nth_prime_upper_bound(n), "n = {n}");
        }
    }
}
