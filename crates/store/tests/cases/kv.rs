//! Plain values: get/set/del, set_nx, TTLs and compare-and-set.

use std::time::Duration;

use bytes::Bytes;
use floodgate_store::{SharedStore, Swap};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Swaps `key`, without TTL, from `expected` (None = absent) to `new`; true when swapped.
async fn swap_to(s: &SharedStore, key: &str, expected: Option<&[u8]>, new: Bytes) -> bool {
    let ttl = None;
    let swap = Swap { expected, new, ttl };
    s.compare_and_set(key, swap).await.unwrap()
}

pub async fn get_set_del(s: SharedStore, p: String) {
    let k = format!("{p}k");
    assert_eq!(s.get(&k).await.unwrap(), None);
    s.set(&k, b("one"), None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), Some(b("one")));
    s.set(&k, b("two"), None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), Some(b("two")));
    // Arbitrary bytes survive unchanged, including the empty value.
    let raw = Bytes::from(vec![0u8, 255, 10, 13, 0]);
    s.set(&k, raw.clone(), None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), Some(raw));
    let empty = format!("{p}empty");
    s.set(&empty, Bytes::new(), None).await.unwrap();
    assert_eq!(s.get(&empty).await.unwrap(), Some(Bytes::new()));
    assert!(s.del(&k).await.unwrap());
    assert!(!s.del(&k).await.unwrap());
    assert_eq!(s.get(&k).await.unwrap(), None);
}

pub async fn set_nx_only_when_absent(s: SharedStore, p: String) {
    let k = format!("{p}nx");
    assert!(s.set_nx(&k, b("first"), None).await.unwrap());
    assert!(!s.set_nx(&k, b("second"), None).await.unwrap());
    assert_eq!(s.get(&k).await.unwrap(), Some(b("first")));
    s.del(&k).await.unwrap();
    assert!(s.set_nx(&k, b("third"), None).await.unwrap());
    assert_eq!(s.get(&k).await.unwrap(), Some(b("third")));
}

pub async fn ttl_expiry(s: SharedStore, p: String) {
    let ttl = Some(Duration::from_millis(200));
    let (k, nx, cas, keep) = (
        format!("{p}ttl"),
        format!("{p}ttl-nx"),
        format!("{p}ttl-cas"),
        format!("{p}ttl-keep"),
    );
    s.set(&k, b("v"), ttl).await.unwrap();
    assert!(s.set_nx(&nx, b("v"), ttl).await.unwrap());
    let first = Swap {
        expected: None,
        new: b("v"),
        ttl,
    };
    assert!(s.compare_and_set(&cas, first).await.unwrap());
    // A later set without TTL makes the key permanent again.
    s.set(&keep, b("v"), ttl).await.unwrap();
    s.set(&keep, b("w"), None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), Some(b("v")));
    assert_eq!(s.get(&cas).await.unwrap(), Some(b("v")));

    tokio::time::sleep(Duration::from_millis(350)).await;

    assert_eq!(s.get(&k).await.unwrap(), None);
    assert_eq!(s.get(&cas).await.unwrap(), None);
    assert!(!s.del(&k).await.unwrap(), "an expired key does not exist");
    assert!(s.set_nx(&nx, b("again"), None).await.unwrap());
    assert!(swap_to(&s, &cas, None, b("again")).await);
    assert_eq!(s.get(&keep).await.unwrap(), Some(b("w")));
}

pub async fn compare_and_set_rules(s: SharedStore, p: String) {
    let k = format!("{p}cas");
    assert!(!swap_to(&s, &k, Some(b"x"), b("y")).await);
    assert_eq!(s.get(&k).await.unwrap(), None, "no write when absent");
    assert!(swap_to(&s, &k, None, b("a")).await);
    assert!(!swap_to(&s, &k, None, b("b")).await);
    assert!(!swap_to(&s, &k, Some(b"wrong"), b("b")).await);
    assert!(!swap_to(&s, &k, Some(b""), b("b")).await);
    assert_eq!(s.get(&k).await.unwrap(), Some(b("a")));
    assert!(swap_to(&s, &k, Some(b"a"), b("b")).await);
    assert_eq!(s.get(&k).await.unwrap(), Some(b("b")));
    // An empty value is present, not absent.
    assert!(swap_to(&s, &k, Some(b"b"), Bytes::new()).await);
    assert!(!swap_to(&s, &k, None, b("c")).await);
    assert!(swap_to(&s, &k, Some(b""), b("c")).await);
}

pub async fn compare_and_set_race(s: SharedStore, p: String) {
    let k = format!("{p}race");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (s, k) = (s.clone(), k.clone());
            tokio::spawn(async move {
                let mut swaps = 0u64;
                for _ in 0..20 {
                    let current = s.get(&k).await.unwrap();
                    let n: u64 = match &current {
                        None => 0,
                        Some(v) => std::str::from_utf8(v).unwrap().parse().unwrap(),
                    };
                    let next = Bytes::from((n + 1).to_string());
                    if swap_to(&s, &k, current.as_deref(), next).await {
                        swaps += 1;
                    }
                }
                swaps
            })
        })
        .collect();
    let mut total = 0;
    for t in futures::future::join_all(tasks).await {
        total += t.unwrap();
    }
    assert!(total > 0);
    let last = s.get(&k).await.unwrap().expect("value written");
    let last: u64 = std::str::from_utf8(&last).unwrap().parse().unwrap();
    assert_eq!(last, total, "every successful swap counted exactly once");
}
