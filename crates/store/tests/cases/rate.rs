//! Sliding-window rate limiting against the real clock. Bounds come from measured elapsed
//! time, so a slow machine widens them instead of failing the test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_store::{RateDecision, RateLimit, SharedStore};

const MS: Duration = Duration::from_millis(1);

/// Calls until refused (at most `cap` times): (allowed count, the refusal).
async fn drain(s: &SharedStore, rate: RateLimit<'_>, cap: u32) -> (u32, Option<RateDecision>) {
    let mut allowed = 0;
    for _ in 0..cap {
        let d = s.rate_limit(rate).await.unwrap();
        if !d.allowed {
            return (allowed, Some(d));
        }
        allowed += 1;
    }
    (allowed, None)
}

pub async fn rate_limit_burst_exact(s: SharedStore, p: String) {
    // A long window, so nothing leaves it while the test runs.
    let (k, window) = (format!("{p}rl"), Duration::from_secs(60));
    let five = RateLimit {
        key: &k,
        limit: 5,
        window,
    };
    let start = Instant::now();
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let d = s.rate_limit(five).await.unwrap();
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.retry_after, Duration::ZERO);
        assert!(d.reset_after <= window + MS, "{d:?}");
        remaining.push(d.remaining);
    }
    assert_eq!(remaining, vec![4, 3, 2, 1, 0]);
    let refused = s.rate_limit(five).await.unwrap();
    let elapsed = start.elapsed();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    // The first admission leaves one window after it was made.
    assert!(refused.retry_after <= window + MS, "{refused:?}");
    assert!(
        refused.retry_after + elapsed + MS >= window,
        "{refused:?} after {elapsed:?}"
    );
    assert!(refused.reset_after >= refused.retry_after, "{refused:?}");
    assert!(refused.reset_after <= window + MS, "{refused:?}");
    for _ in 0..20 {
        assert!(!s.rate_limit(five).await.unwrap().allowed);
    }
}

pub async fn rate_limit_retry_after_is_enough(s: SharedStore, p: String) {
    let (k, window) = (format!("{p}rl"), Duration::from_secs(1));
    let five = RateLimit {
        key: &k,
        limit: 5,
        window,
    };
    let start = Instant::now();
    let (burst, refused) = drain(&s, five, 50).await;
    let refused = refused.expect("the limiter refuses eventually");
    if start.elapsed() < window {
        assert_eq!(burst, 5);
    }
    assert!(refused.retry_after <= window + MS, "{refused:?}");

    tokio::time::sleep(refused.retry_after).await;
    let (again, _) = drain(&s, five, 50).await;
    assert!(again >= 1, "waiting retry_after is enough");
    assert!(again <= 5, "{again} passed: more than the limit");
}

pub async fn rate_limit_no_double_burst(s: SharedStore, p: String) {
    let (k, window) = (format!("{p}rl"), Duration::from_secs(1));
    let ten = RateLimit {
        key: &k,
        limit: 10,
        window,
    };
    let first_start = Instant::now();
    let (first, _) = drain(&s, ten, 40).await;
    let first_end = Instant::now();
    if first_end - first_start < window {
        assert_eq!(first, 10);
    }

    // Half a window later nothing has left the window yet: a fixed window that rolled over,
    // or a GCRA refilling evenly, would admit more here.
    tokio::time::sleep(window / 2).await;
    let (second, _) = drain(&s, ten, 40).await;
    if first_start.elapsed() < window {
        assert_eq!(second, 0, "admitted within one window of a full burst");
    }

    // A full window after the burst every slot is back, and only those.
    tokio::time::sleep((first_end + window).saturating_duration_since(Instant::now())).await;
    let third_start = Instant::now();
    let (third, _) = drain(&s, ten, 40).await;
    if third_start.elapsed() < window {
        assert_eq!(third + second, 10, "second {second}, third {third}");
    }
}

pub async fn rate_limit_strict_in_any_window(s: SharedStore, p: String) {
    // Four clients share one key for three windows and a bit, calling every few ms.
    let (limit, window) = (10u32, Duration::from_millis(500));
    let key = Arc::new(format!("{p}rl"));
    let run_for = window * 3 + window / 5;
    let start = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                let rate = RateLimit {
                    key: &key,
                    limit,
                    window,
                };
                let mut admitted = Vec::new();
                while start.elapsed() < run_for {
                    let sent = Instant::now();
                    let d = s.rate_limit(rate).await.unwrap();
                    if d.allowed {
                        admitted.push((sent, Instant::now()));
                    } else {
                        assert!(d.retry_after > Duration::ZERO, "{d:?}");
                        assert!(d.retry_after <= window + MS, "{d:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                admitted
            })
        })
        .collect();
    let mut admitted = Vec::new();
    for t in tasks {
        admitted.extend(t.await.expect("client task"));
    }
    // Liveness: the limiter frees slots as they leave the window (at least two refills).
    assert!(
        admitted.len() >= 2 * limit as usize,
        "only {} admitted",
        admitted.len()
    );
    floodgate_testkit::assert_at_most_limit_in_any_window(admitted, limit as usize, window);
}

pub async fn rate_limit_keys_and_zero_limit(s: SharedStore, p: String) {
    let (a, b, z) = (format!("{p}a"), format!("{p}b"), format!("{p}z"));
    let one = RateLimit {
        key: &a,
        limit: 1,
        window: Duration::from_secs(60),
    };
    assert!(s.rate_limit(one).await.unwrap().allowed);
    assert!(!s.rate_limit(one).await.unwrap().allowed);
    assert!(
        s.rate_limit(RateLimit { key: &b, ..one })
            .await
            .unwrap()
            .allowed,
        "keys are independent"
    );
    let none = RateLimit {
        key: &z,
        limit: 0,
        ..one
    };
    let zero = s.rate_limit(none).await.unwrap();
    assert!(!zero.allowed);
    assert_eq!(zero.remaining, 0);
}
