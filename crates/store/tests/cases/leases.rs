//! Bounded pools of expiring leases.

use std::time::Duration;

use floodgate_store::{Lease, SharedStore};

const LONG: Duration = Duration::from_secs(60);

pub async fn lease_capacity_under_contention(s: SharedStore, p: String) {
    let pool = format!("{p}pool");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (s, pool) = (s.clone(), pool.clone());
            tokio::spawn(async move {
                let got = s
                    .lease_acquire(Lease {
                        pool: &pool,
                        holder: &format!("h{i}"),
                        capacity: 7,
                        ttl: LONG,
                    })
                    .await
                    .unwrap();
                (i, got)
            })
        })
        .collect();
    let winners: Vec<usize> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .filter(|(_, got)| *got)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 7);
    assert_eq!(s.lease_count(&pool).await.unwrap(), 7);
    // A holder renews its own slot instead of taking a second one; newcomers are refused.
    let holder = format!("h{}", winners[0]);
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: &holder,
            capacity: 7,
            ttl: LONG
        })
        .await
        .unwrap());
    assert_eq!(s.lease_count(&pool).await.unwrap(), 7);
    assert!(!s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "newcomer",
            capacity: 7,
            ttl: LONG
        })
        .await
        .unwrap());
    // Pools are independent.
    let other = format!("{p}other");
    assert_eq!(s.lease_count(&other).await.unwrap(), 0);
    assert!(s
        .lease_acquire(Lease {
            pool: &other,
            holder: "newcomer",
            capacity: 1,
            ttl: LONG
        })
        .await
        .unwrap());
    assert!(!s
        .lease_acquire(Lease {
            pool: &other,
            holder: "second",
            capacity: 1,
            ttl: LONG
        })
        .await
        .unwrap());
}

pub async fn lease_release_frees_slot(s: SharedStore, p: String) {
    let pool = format!("{p}pool");
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "a",
            capacity: 2,
            ttl: LONG
        })
        .await
        .unwrap());
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "b",
            capacity: 2,
            ttl: LONG
        })
        .await
        .unwrap());
    assert!(!s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "c",
            capacity: 2,
            ttl: LONG
        })
        .await
        .unwrap());
    s.lease_release(&pool, "nobody").await.unwrap();
    assert_eq!(
        s.lease_count(&pool).await.unwrap(),
        2,
        "releasing a stranger is a no-op"
    );
    s.lease_release(&pool, "a").await.unwrap();
    assert_eq!(s.lease_count(&pool).await.unwrap(), 1);
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "c",
            capacity: 2,
            ttl: LONG
        })
        .await
        .unwrap());
    assert!(!s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "d",
            capacity: 2,
            ttl: LONG
        })
        .await
        .unwrap());
    s.lease_release(&pool, "a").await.unwrap();
    assert_eq!(
        s.lease_count(&pool).await.unwrap(),
        2,
        "double release frees nothing"
    );
    s.lease_release(&format!("{p}missing"), "a").await.unwrap();
}

pub async fn lease_expiry_frees_slot(s: SharedStore, p: String) {
    let pool = format!("{p}pool");
    let short = Duration::from_millis(250);
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "a",
            capacity: 2,
            ttl: short
        })
        .await
        .unwrap());
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "b",
            capacity: 2,
            ttl: LONG
        })
        .await
        .unwrap());
    assert!(!s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "c",
            capacity: 2,
            ttl: short
        })
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.lease_count(&pool).await.unwrap(),
        1,
        "a's lease expired, b's did not"
    );
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "c",
            capacity: 2,
            ttl: short
        })
        .await
        .unwrap());
    assert!(!s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "d",
            capacity: 2,
            ttl: short
        })
        .await
        .unwrap());
    // When every lease has expired the pool is empty again.
    let lone = format!("{p}lone");
    assert!(s
        .lease_acquire(Lease {
            pool: &lone,
            holder: "x",
            capacity: 1,
            ttl: short
        })
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.lease_count(&lone).await.unwrap(), 0);
    assert!(s
        .lease_acquire(Lease {
            pool: &lone,
            holder: "y",
            capacity: 1,
            ttl: short
        })
        .await
        .unwrap());
}

pub async fn lease_holders_are_the_live_leases(s: SharedStore, p: String) {
    let pool = format!("{p}members");
    assert!(s.lease_holders(&pool).await.unwrap().is_empty());
    let short = Duration::from_millis(250);
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "node-b",
            capacity: 10,
            ttl: LONG
        })
        .await
        .unwrap());
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "node-a",
            capacity: 10,
            ttl: short
        })
        .await
        .unwrap());
    assert!(s
        .lease_acquire(Lease {
            pool: &pool,
            holder: "node-c",
            capacity: 10,
            ttl: LONG
        })
        .await
        .unwrap());
    assert_eq!(
        s.lease_holders(&pool).await.unwrap(),
        ["node-a", "node-b", "node-c"],
        "sorted"
    );
    s.lease_release(&pool, "node-c").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.lease_holders(&pool).await.unwrap(),
        ["node-b"],
        "a expired, c released"
    );
}
