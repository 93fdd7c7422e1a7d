//! The rate limit and the idempotent apply in one step (`limited_apply`), and the plain
//! limiter on the same log (`rate_limit_beside`). On Redis Cluster every key here is in a
//! slot of its own unless the store places the log and the record beside the counter, so a
//! missing placement fails these cases with CROSSSLOT.

use std::time::{Duration, Instant};

use floodgate_store::{
    Apply, CounterOp, IdemOutcome, Limited, RateDecision, RateLimit, SharedStore,
};

const TTL: Duration = Duration::from_secs(60);
const WINDOW: Duration = Duration::from_secs(60);
const MS: Duration = Duration::from_millis(1);

fn rate(key: &str, limit: u32) -> RateLimit<'_> {
    RateLimit {
        key,
        limit,
        window: WINDOW,
    }
}

/// `op` on `counter`, at most once per `key` (fingerprint `fingerprint`), its record kept
/// `TTL`.
fn step<'a>(counter: &'a str, op: CounterOp, key: &'a str, fingerprint: &'a str) -> Apply<'a> {
    Apply {
        counter,
        op,
        key,
        fingerprint,
        ttl: TTL,
    }
}

/// The outcome of an admitted call, with the requests it left.
fn admitted(l: Limited<IdemOutcome>) -> (u64, IdemOutcome) {
    match l {
        Limited::Admitted(d, outcome) => {
            assert!(d.allowed, "{d:?}");
            assert_eq!(d.retry_after, Duration::ZERO);
            assert!(d.reset_after <= WINDOW + MS, "{d:?}");
            (d.remaining, outcome)
        }
        Limited::Refused(d) => panic!("refused: {d:?}"),
    }
}

fn refused(l: Limited<IdemOutcome>) -> RateDecision {
    match l {
        Limited::Refused(d) => {
            assert!(!d.allowed && d.remaining == 0, "{d:?}");
            d
        }
        Limited::Admitted(d, o) => panic!("admitted: {d:?} {o:?}"),
    }
}

pub async fn limited_apply_counts_every_call_and_applies_once(s: SharedStore, p: String) {
    let (c, rl) = (format!("{p}c"), format!("{p}rl"));
    let (k1, k2) = (format!("{p}k1"), format!("{p}k2"));
    let call = |op, key: &str, fp: &str| {
        let (s, c, rl, key, fp) = (
            s.clone(),
            c.clone(),
            rl.clone(),
            key.to_string(),
            fp.to_string(),
        );
        async move {
            s.limited_apply(rate(&rl, 4), step(&c, op, &key, &fp))
                .await
                .unwrap()
        }
    };
    let first = admitted(call(CounterOp::Add(5), &k1, "fp-a").await);
    assert_eq!(first, (3, IdemOutcome::Applied(5)));
    // A replay and a mismatch change nothing, but each is a request like any other.
    let replay = admitted(call(CounterOp::Add(5), &k1, "fp-a").await);
    assert_eq!(replay, (2, IdemOutcome::Replayed(5)));
    let mismatch = admitted(call(CounterOp::Add(9), &k1, "fp-z").await);
    assert_eq!(mismatch, (1, IdemOutcome::Mismatch));
    let set = admitted(call(CounterOp::Set(40), &k2, "fp-s").await);
    assert_eq!(set, (0, IdemOutcome::Applied(40)));
    assert_eq!(s.get_i64(&c).await.unwrap(), 40);

    // Over the limit: nothing applied and no record written, whatever the key holds.
    let k3 = format!("{p}k3");
    for (op, key, fp) in [
        (CounterOp::Add(7), &k3, "fp-b"),
        (CounterOp::Add(5), &k1, "fp-a"),
        (CounterOp::Add(1), &k1, "fp-y"),
    ] {
        let d = refused(call(op, key, fp).await);
        assert!(
            d.retry_after > Duration::ZERO && d.retry_after <= WINDOW + MS,
            "{d:?}"
        );
        assert!(d.reset_after >= d.retry_after, "{d:?}");
    }
    assert_eq!(
        s.get_i64(&c).await.unwrap(),
        40,
        "a refusal changes nothing"
    );
    let later = s
        .idempotent_apply(step(&c, CounterOp::Add(7), &k3, "fp-b"))
        .await
        .unwrap();
    assert_eq!(
        later,
        IdemOutcome::Applied(47),
        "the refused key left no record"
    );
    // The records written by admitted calls are the plain apply's records.
    let again = s
        .idempotent_apply(step(&c, CounterOp::Add(5), &k1, "fp-a"))
        .await
        .unwrap();
    assert_eq!(again, IdemOutcome::Replayed(5));

    // An overflow is admitted (and counted) but applies nothing and keeps no record.
    let (of, rl2, k4) = (format!("{p}of"), format!("{p}rl2"), format!("{p}k4"));
    s.incr_by(&of, i64::MAX).await.unwrap();
    let over = s
        .limited_apply(rate(&rl2, 2), step(&of, CounterOp::Add(1), &k4, "f"))
        .await
        .unwrap();
    assert_eq!(admitted(over), (1, IdemOutcome::Overflow));
    let fits = s
        .limited_apply(rate(&rl2, 2), step(&of, CounterOp::Add(0), &k4, "f0"))
        .await
        .unwrap();
    assert_eq!(admitted(fits), (0, IdemOutcome::Applied(i64::MAX)));

    // A limit of 0 refuses everything, as `rate_limit` does.
    let zero = s
        .limited_apply(
            rate(&format!("{p}z"), 0),
            step(&c, CounterOp::Add(1), &format!("{p}k5"), "f"),
        )
        .await
        .unwrap();
    refused(zero);
    assert_eq!(s.get_i64(&c).await.unwrap(), 47);
}

/// `limited_apply` and `rate_limit_beside` keep one log, and report the figures `rate_limit`
/// reports for the same history.
pub async fn limited_apply_shares_its_log_and_figures(s: SharedStore, p: String) {
    let (c, shared, alone) = (format!("{p}c"), format!("{p}rl"), format!("{p}alone"));
    let key = |i: u32| format!("{p}k{i}");
    let start = Instant::now();
    // The same history on two logs: one through the two combined calls, one plain.
    let mut remaining = Vec::new();
    for i in 0..5u32 {
        let (combined, plain) = if i % 2 == 0 {
            let l = s
                .limited_apply(rate(&shared, 5), step(&c, CounterOp::Add(1), &key(i), "f"))
                .await
                .unwrap();
            (admitted(l).0, s.rate_limit(rate(&alone, 5)).await.unwrap())
        } else {
            let d = s.rate_limit_beside(&c, rate(&shared, 5)).await.unwrap();
            assert!(d.allowed, "{d:?}");
            (d.remaining, s.rate_limit(rate(&alone, 5)).await.unwrap())
        };
        assert_eq!(combined, plain.remaining, "call {i}");
        remaining.push(combined);
    }
    assert_eq!(remaining, vec![4, 3, 2, 1, 0]);
    assert_eq!(
        s.get_i64(&c).await.unwrap(),
        3,
        "the three combined calls applied"
    );

    // Full: both ways of asking refuse, with what the plain limiter says.
    let asked = Instant::now();
    let by_apply = refused(
        s.limited_apply(rate(&shared, 5), step(&c, CounterOp::Add(1), &key(9), "f"))
            .await
            .unwrap(),
    );
    let by_beside = s.rate_limit_beside(&c, rate(&shared, 5)).await.unwrap();
    let by_plain = s.rate_limit(rate(&alone, 5)).await.unwrap();
    let between = asked.elapsed() + MS;
    assert!(!by_beside.allowed && !by_plain.allowed);
    for (what, d) in [("beside", by_beside), ("plain", by_plain)] {
        // Asked at most `between` apart about histories made at most `start.elapsed()`
        // apart: the figures agree within that (each is rounded up to whole ms).
        let slack = between + start.elapsed() + MS;
        let close = |a: Duration, b: Duration| a.abs_diff(b) <= slack;
        assert!(
            close(d.retry_after, by_apply.retry_after),
            "{what}: {d:?} vs {by_apply:?}"
        );
        assert!(
            close(d.reset_after, by_apply.reset_after),
            "{what}: {d:?} vs {by_apply:?}"
        );
        assert_eq!(d.remaining, 0);
    }
    assert!(
        by_apply.retry_after + start.elapsed() + MS >= WINDOW,
        "{by_apply:?}"
    );
    assert!(by_apply.retry_after <= WINDOW + MS, "{by_apply:?}");
    assert_eq!(s.get_i64(&c).await.unwrap(), 3);
}

pub async fn limited_apply_concurrent_admits_exactly_the_limit(s: SharedStore, p: String) {
    let (c, rl) = (format!("{p}c"), format!("{p}rl"));
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let (s, c, rl, k) = (s.clone(), c.clone(), rl.clone(), format!("{p}k{}", i % 40));
            tokio::spawn(async move {
                s.limited_apply(rate(&rl, 25), step(&c, CounterOp::Add(3), &k, "fp"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    let mut counted = 0;
    for r in futures::future::join_all(calls).await {
        match r.unwrap() {
            Limited::Admitted(_, IdemOutcome::Applied(_)) => {
                applied += 1;
                counted += 1;
            }
            Limited::Admitted(_, IdemOutcome::Replayed(_)) => counted += 1,
            Limited::Admitted(d, o) => panic!("{d:?} {o:?}"),
            Limited::Refused(_) => {}
        }
    }
    assert_eq!(counted, 25, "exactly the limit admitted");
    assert_eq!(s.get_i64(&c).await.unwrap(), 3 * applied);
}
