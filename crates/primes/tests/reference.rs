//! The sieve against known values and a plain trial-division reference.

mod common;

use floodgate_primes::{first_primes, nth_prime_upper_bound};

#[test]
fn known_values() {
    assert_eq!(first_primes(1), vec![2]);
    assert_eq!(first_primes(2), vec![2, 3]);
    assert_eq!(first_primes(10), vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    let thousand = first_primes(1000);
    assert_eq!(thousand.len(), 1000);
    assert_eq!(thousand[999], 7919);
    // pi(10^6) = 78,498: the last prime below a million is 999,983.
    let p = first_primes(78_498);
    assert_eq!(p.len(), 78_498);
    assert_eq!(p[78_497], 999_983);
    assert!(p.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn matches_trial_division_up_to_a_few_thousand() {
    let reference = common::trial::trial_division(5000);
    for n in (0..=200).chain([997, 1000, 1229, 2048, 4999, 5000]) {
        assert_eq!(first_primes(n), reference[..n], "n = {n}");
    }
}

#[test]
fn the_millionth_prime() {
    // p(10^6) = 15,485,863.
    let p = first_primes(1_000_000);
    assert_eq!(p.len(), 1_000_000);
    assert_eq!(p[999_999], 15_485_863);
    assert!(nth_prime_upper_bound(1_000_000) > 15_485_863);
}
