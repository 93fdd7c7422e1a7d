//! Apply-at-most-once counter steps.

use std::time::Duration;

use floodgate_store::{Apply, CounterOp, IdemOutcome, SharedStore};

const TTL: Duration = Duration::from_secs(60);

/// `idempotent_apply`, which must answer.
async fn once(s: &SharedStore, apply: Apply<'_>) -> IdemOutcome {
    s.idempotent_apply(apply).await.unwrap()
}

pub async fn idempotent_outcomes(s: SharedStore, p: String) {
    let (c, k1, k2) = (format!("{p}c"), format!("{p}k1"), format!("{p}k2"));
    let add5 = Apply {
        counter: &c,
        op: CounterOp::Add(5),
        key: &k1,
        fingerprint: "fp-a",
        ttl: TTL,
    };
    let first = once(&s, add5).await;
    assert_eq!(first, IdemOutcome::Applied(5));
    // Another key moves the counter; the first key's replay still reports its own result.
    let add3 = Apply {
        op: CounterOp::Add(3),
        key: &k2,
        fingerprint: "fp-b",
        ..add5
    };
    let other = once(&s, add3).await;
    assert_eq!(other, IdemOutcome::Applied(8));
    let replay = once(&s, add5).await;
    assert_eq!(replay, IdemOutcome::Replayed(5));
    let other_body = Apply {
        op: CounterOp::Add(9),
        fingerprint: "fp-z",
        ..add5
    };
    let mismatch = once(&s, other_body).await;
    assert_eq!(mismatch, IdemOutcome::Mismatch);
    assert_eq!(
        s.get_i64(&c).await.unwrap(),
        8,
        "replay and mismatch change nothing"
    );

    // Set replaces the value; its replay does not re-apply over later changes.
    let k3 = format!("{p}k3");
    let set4 = Apply {
        op: CounterOp::Set(-4),
        key: &k3,
        fingerprint: "fp-s",
        ..add5
    };
    let set = once(&s, set4).await;
    assert_eq!(set, IdemOutcome::Applied(-4));
    s.incr_by(&c, 10).await.unwrap();
    let set_again = once(&s, set4).await;
    assert_eq!(set_again, IdemOutcome::Replayed(-4));
    assert_eq!(s.get_i64(&c).await.unwrap(), 6);

    // Overflow: nothing applied and no record kept, so the key can be used again.
    let (of, k4) = (format!("{p}of"), format!("{p}k4"));
    s.incr_by(&of, i64::MAX - 1).await.unwrap();
    let add2 = Apply {
        counter: &of,
        op: CounterOp::Add(2),
        key: &k4,
        fingerprint: "fp-o",
        ttl: TTL,
    };
    let over = once(&s, add2).await;
    assert_eq!(over, IdemOutcome::Overflow);
    assert_eq!(s.get_i64(&of).await.unwrap(), i64::MAX - 1);
    let add1 = Apply {
        op: CounterOp::Add(1),
        ..add2
    };
    let fits = once(&s, add1).await;
    assert_eq!(fits, IdemOutcome::Applied(i64::MAX));
    let k5 = format!("{p}k5");
    let add_min = Apply {
        op: CounterOp::Add(i64::MIN),
        key: &k5,
        fingerprint: "f",
        ..add2
    };
    let under = once(&s, add_min).await;
    assert_eq!(under, IdemOutcome::Applied(-1));
    let (lo, k6) = (format!("{p}lo"), format!("{p}k6"));
    s.incr_by(&lo, i64::MIN).await.unwrap();
    let down1 = Apply {
        counter: &lo,
        op: CounterOp::Add(-1),
        key: &k6,
        ..add_min
    };
    let low = once(&s, down1).await;
    assert_eq!(low, IdemOutcome::Overflow);
    assert_eq!(s.get_i64(&lo).await.unwrap(), i64::MIN);
}

pub async fn idempotent_exact_large_values(s: SharedStore, p: String) {
    let c = format!("{p}c");
    let [ka, kb, kd, ke] = ["a", "b", "d", "e"].map(|k| format!("{p}{k}"));
    let big = 9_007_199_254_740_993; // 2^53 + 1: not a double
    let set_big = Apply {
        counter: &c,
        op: CounterOp::Set(big),
        key: &ka,
        fingerprint: "f",
        ttl: TTL,
    };
    let set = once(&s, set_big).await;
    assert_eq!(set, IdemOutcome::Applied(big));
    let add2 = Apply {
        op: CounterOp::Add(2),
        key: &kb,
        ..set_big
    };
    let add = once(&s, add2).await;
    assert_eq!(add, IdemOutcome::Applied(big + 2));
    let replay = once(&s, add2).await;
    assert_eq!(replay, IdemOutcome::Replayed(big + 2));
    assert_eq!(s.get_i64(&c).await.unwrap(), big + 2);
    let near = i64::MAX - 3;
    let set_near = Apply {
        op: CounterOp::Set(near),
        key: &ke,
        ..set_big
    };
    let top = once(&s, set_near).await;
    assert_eq!(top, IdemOutcome::Applied(near));
    let add3 = Apply {
        op: CounterOp::Add(3),
        key: &kd,
        ..set_big
    };
    let up = once(&s, add3).await;
    assert_eq!(up, IdemOutcome::Applied(i64::MAX));
}

pub async fn idempotent_concurrent_applies_once(s: SharedStore, p: String) {
    let (c, k) = (format!("{p}c"), format!("{p}same"));
    let same: Vec<_> = (0..100)
        .map(|_| {
            let (s, c, k) = (s.clone(), c.clone(), k.clone());
            tokio::spawn(async move {
                let add7 = Apply {
                    counter: &c,
                    op: CounterOp::Add(7),
                    key: &k,
                    fingerprint: "fp",
                    ttl: TTL,
                };
                once(&s, add7).await
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
                let add3 = Apply {
                    counter: &c2,
                    op: CounterOp::Add(3),
                    key: &k,
                    fingerprint: "fp",
                    ttl: TTL,
                };
                once(&s, add3).await
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
    let add1 = Apply {
        counter: &c,
        op: CounterOp::Add(1),
        key: &k,
        fingerprint: "f",
        ttl: short,
    };
    let first = once(&s, add1).await;
    assert_eq!(first, IdemOutcome::Applied(1));
    let replay = once(&s, add1).await;
    assert_eq!(replay, IdemOutcome::Replayed(1));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let again = once(&s, add1).await;
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
