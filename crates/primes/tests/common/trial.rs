//! The reference the sieve is checked against (tests) and timed against (the
//! `sieve_vs_trial` example, which includes this file).

/// The first n primes by plain trial division by every prime found so far up to the square
/// root: slow, obviously right, and the usual shape of a Python "first n primes" task.
pub fn trial_division(n: usize) -> Vec<u64> {
    let mut primes: Vec<u64> = Vec::with_capacity(n);
    let mut candidate = 2u64;
    while primes.len() < n {
        if primes
            .iter()
            .take_while(|&&p| p * p <= candidate)
            .all(|&p| candidate % p != 0)
        {
            primes.push(candidate);
        }
        candidate += 1;
    }
    primes
}
