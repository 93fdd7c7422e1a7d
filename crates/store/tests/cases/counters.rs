//! Exact 64-bit counters and type errors.

use std::time::Duration;

use bytes::Bytes;
use floodgate_store::{Apply, CounterOp, Lease, SharedStore, StoreError};

pub async fn counter_reads_as_text(s: SharedStore, p: String) {
    let k = format!("{p}c");
    assert_eq!(s.get_i64(&k).await.unwrap(), 0, "missing reads as 0");
    assert_eq!(s.incr_by(&k, 42).await.unwrap(), 42);
    assert_eq!(s.get(&k).await.unwrap(), Some(Bytes::from_static(b"42")));
    // Text written by set is a counter too when it is a canonical integer.
    s.set(&k, Bytes::from_static(b"-17"), None).await.unwrap();
    assert_eq!(s.incr_by(&k, 20).await.unwrap(), 3);
    assert_eq!(s.get_i64(&k).await.unwrap(), 3);
}

pub async fn incr_by_exact_at_edges(s: SharedStore, p: String) {
    let hi = format!("{p}hi");
    assert_eq!(s.incr_by(&hi, i64::MAX - 1).await.unwrap(), i64::MAX - 1);
    assert_eq!(s.incr_by(&hi, 1).await.unwrap(), i64::MAX);
    assert!(matches!(s.incr_by(&hi, 1).await, Err(StoreError::Overflow)));
    assert!(matches!(
        s.incr_by(&hi, i64::MAX).await,
        Err(StoreError::Overflow)
    ));
    assert_eq!(
        s.get_i64(&hi).await.unwrap(),
        i64::MAX,
        "overflow changes nothing"
    );
    assert_eq!(s.incr_by(&hi, i64::MIN).await.unwrap(), -1);

    let lo = format!("{p}lo");
    assert_eq!(s.incr_by(&lo, i64::MIN).await.unwrap(), i64::MIN);
    assert!(matches!(
        s.incr_by(&lo, -1).await,
        Err(StoreError::Overflow)
    ));
    assert_eq!(s.get_i64(&lo).await.unwrap(), i64::MIN);
    assert_eq!(s.incr_by(&lo, i64::MAX).await.unwrap(), -1);

    // Above 2^53 a double would round; the counter must not.
    let big = format!("{p}big");
    assert_eq!(s.incr_by(&big, 1 << 53).await.unwrap(), 1 << 53);
    assert_eq!(s.incr_by(&big, 1).await.unwrap(), (1 << 53) + 1);
    assert_eq!(s.get_i64(&big).await.unwrap(), 9_007_199_254_740_993);
    assert_eq!(
        s.get(&big).await.unwrap(),
        Some(Bytes::from_static(b"9007199254740993"))
    );
}

pub async fn wrong_types(s: SharedStore, p: String) {
    let text = format!("{p}text");
    s.set(&text, Bytes::from_static(b"abc"), None)
        .await
        .unwrap();
    assert!(matches!(
        s.incr_by(&text, 1).await,
        Err(StoreError::WrongType(_))
    ));
    assert!(matches!(
        s.get_i64(&text).await,
        Err(StoreError::WrongType(_))
    ));
    let idem = s
        .idempotent_apply(Apply {
            counter: &text,
            op: CounterOp::Add(1),
            key: &format!("{p}idem"),
            fingerprint: "f",
            ttl: Duration::from_secs(60),
        })
        .await;
    assert!(matches!(idem, Err(StoreError::WrongType(_))), "{idem:?}");
    assert_eq!(
        s.get(&text).await.unwrap(),
        Some(Bytes::from_static(b"abc"))
    );
    for padded in [&b"007"[..], b" 7", b"1.5"] {
        s.set(&text, Bytes::copy_from_slice(padded), None)
            .await
            .unwrap();
        assert!(matches!(
            s.incr_by(&text, 1).await,
            Err(StoreError::WrongType(_))
        ));
    }

    let on_text = Lease {
        pool: &text,
        holder: "h",
        capacity: 1,
        ttl: Duration::from_secs(5),
    };
    let lease = s.lease_acquire(on_text).await;
    assert!(matches!(lease, Err(StoreError::WrongType(_))), "{lease:?}");
    let pool = format!("{p}pool");
    let on_pool = Lease {
        pool: &pool,
        ..on_text
    };
    assert!(s.lease_acquire(on_pool).await.unwrap());
    assert!(matches!(s.get(&pool).await, Err(StoreError::WrongType(_))));
    assert!(matches!(
        s.incr_by(&pool, 1).await,
        Err(StoreError::WrongType(_))
    ));
}
