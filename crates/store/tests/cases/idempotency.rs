//! Apply-at-most-once counter steps.

use std::time::Duration;

use floodgate_store::{Apply, CounterOp, IdemOutcome, SharedStore};

const TTL: Duration = Duration::from_secs(60);

pub async fn idempotent_outcomes(s: SharedStore, p: String) {
    let (c, k1, k2) = (format!("{p}c"), format!("{p}k1"), format!("{p}k2"));
    let first = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(5),
            key: &k1,
            fingerprint: "fp-a",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(first, IdemOutcome::Applied(5));
    // Another key moves the counter; the first key's replay still reports its own result.
    let other = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(3),
            key: &k2,
            fingerprint: "fp-b",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(other, IdemOutcome::Applied(8));
    let replay = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(5),
            key: &k1,
            fingerprint: "fp-a",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(replay, IdemOutcome::Replayed(5));
    let mismatch = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(9),
            key: &k1,
            fingerprint: "fp-z",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(mismatch, IdemOutcome::Mismatch);
    assert_eq!(
        s.get_i64(&c).await.unwrap(),
        8,
        "replay and mismatch change nothing"
    );

    // Set replaces the value; its replay does not re-apply over later changes.
    let k3 = format!("{p}k3");
    let set = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Set(-4),
            key: &k3,
            fingerprint: "fp-s",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(set, IdemOutcome::Applied(-4));
    s.incr_by(&c, 10).await.unwrap();
    let set_again = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Set(-4),
            key: &k3,
            fingerprint: "fp-s",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(set_again, IdemOutcome::Replayed(-4));
    assert_eq!(s.get_i64(&c).await.unwrap(), 6);

    // Overflow: nothing applied and no record kept, so the key can be used again.
    let (of, k4) = (format!("{p}of"), format!("{p}k4"));
    s.incr_by(&of, i64::MAX - 1).await.unwrap();
    let over = s
        .idempotent_apply(Apply {
            counter: &of,
            op: CounterOp::Add(2),
            key: &k4,
            fingerprint: "fp-o",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(over, IdemOutcome::Overflow);
    assert_eq!(s.get_i64(&of).await.unwrap(), i64::MAX - 1);
    let fits = s
        .idempotent_apply(Apply {
            counter: &of,
            op: CounterOp::Add(1),
            key: &k4,
            fingerprint: "fp-o",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(fits, IdemOutcome::Applied(i64::MAX));
    let under = s
        .idempotent_apply(Apply {
            counter: &of,
            op: CounterOp::Add(i64::MIN),
            key: &format!("{p}k5"),
            fingerprint: "f",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(under, IdemOutcome::Applied(-1));
    let (lo, k6) = (format!("{p}lo"), format!("{p}k6"));
    s.incr_by(&lo, i64::MIN).await.unwrap();
    let low = s
        .idempotent_apply(Apply {
            counter: &lo,
            op: CounterOp::Add(-1),
            key: &k6,
            fingerprint: "f",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(low, IdemOutcome::Overflow);
    assert_eq!(s.get_i64(&lo).await.unwrap(), i64::MIN);
}

pub async fn idempotent_exact_large_values(s: SharedStore, p: String) {
    let c = format!("{p}c");
    let big = 9_007_199_254_740_993; // 2^53 + 1: not a double
    let set = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Set(big),
            key: &format!("{p}a"),
            fingerprint: "f",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(set, IdemOutcome::Applied(big));
    let add = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(2),
            key: &format!("{p}b"),
            fingerprint: "f",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(add, IdemOutcome::Applied(big + 2));
    let replay = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(2),
            key: &format!("{p}b"),
            fingerprint: "f",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(replay, IdemOutcome::Replayed(big + 2));
    assert_eq!(s.get_i64(&c).await.unwrap(), big + 2);
    let near = i64::MAX - 3;
    let top = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Set(near),
            key: &format!("{p}e"),
            fingerprint: "f",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(top, IdemOutcome::Applied(near));
    let up = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(3),
            key: &format!("{p}d"),
            fingerprint: "f",
            ttl: TTL,
        })
        .await
        .unwrap();
    assert_eq!(up, IdemOutcome::Applied(i64::MAX));
}

pub async fn idempotent_concurrent_applies_once(s: SharedStore, p: String) {
    let (c, k) = (format!("{p}c"), format!("{p}same"));
    let same: Vec<_> = (0..100)
        .map(|_| {
            let (s, c, k) = (s.clone(), c.clone(), k.clone());
            tokio::spawn(async move {
                s.idempotent_apply(Apply {
                    counter: &c,
                    op: CounterOp::Add(7),
                    key: &k,
                    fingerprint: "fp",
                    ttl: TTL,
                })
                .await
                .unwrap()
            })
        })
        .collect();
    let outcomes: Vec<_> = futures::future::join_all(same)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let applied = outcomes
        .iter()
        .filter(|o| **o == IdemOutcome::Applied(7))
        .count();
    let replayed = outcomes
        .iter()
        .filter(|o| **o == IdemOutcome::Replayed(7))
        .count();
    assert_eq!((applied, replayed), (1, 99), "{outcomes:?}");
    assert_eq!(s.get_i64(&c).await.unwrap(), 7);

    // Distinct keys all apply, and no increment is lost.
    let c2 = format!("{p}c2");
    let distinct: Vec<_> = (0..100)
        .map(|i| {
            let (s, c2, k) = (s.clone(), c2.clone(), format!("{p}k{i}"));
            tokio::spawn(async move {
                s.idempotent_apply(Apply {
                    counter: &c2,
                    op: CounterOp::Add(3),
                    key: &k,
                    fingerprint: "fp",
                    ttl: TTL,
                })
                .await
                .unwrap()
            })
        })
        .collect();
    let mut results: Vec<i64> = Vec::new();
    for r in futures::future::join_all(distinct).await {
        match r.unwrap() {
            IdemOutcome::Applied(v) => results.push(v),
            other => panic!("expected Applied, got {other:?}"),
        }
    }
    results.sort_unstable();
    let expected: Vec<i64> = (1..=100).map(|i| i * 3).collect();
    assert_eq!(results, expected, "each apply saw a distinct running total");
    assert_eq!(s.get_i64(&c2).await.unwrap(), 300);
}

pub async fn idempotent_record_expires(s: SharedStore, p: String) {
    let (c, k) = (format!("{p}c"), format!("{p}k"));
    let short = Duration::from_millis(200);
    let first = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(1),
            key: &k,
            fingerprint: "f",
            ttl: short,
        })
        .await
        .unwrap();
    assert_eq!(first, IdemOutcome::Applied(1));
    let replay = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(1),
            key: &k,
            fingerprint: "f",
            ttl: short,
        })
        .await
        .unwrap();
    assert_eq!(replay, IdemOutcome::Replayed(1));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let again = s
        .idempotent_apply(Apply {
            counter: &c,
            op: CounterOp::Add(1),
            key: &k,
            fingerprint: "f",
            ttl: short,
        })
        .await
        .unwrap();
    assert_eq!(
        again,
        IdemOutcome::Applied(2),
        "the record lived only its TTL"
    );
    assert_eq!(
        s.get_i64(&c).await.unwrap(),
        2,
        "the counter itself does not expire"
    );
}
