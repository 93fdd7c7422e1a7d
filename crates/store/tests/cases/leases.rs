//! Bounded pools of expiring leases.

use std::time::Duration;

use floodgate_store::{Lease, SharedStore};

const LONG: Duration = Duration::from_secs(60);

/// Asks for one of `slots`'s slots (its pool, capacity and TTL) for `holder`.
async fn take(s: &SharedStore, slots: Lease<'_>, holder: &str) -> bool {
    s.lease_acquire(Lease { holder, ..slots }).await.unwrap()
}

/// `capacity` slots in `pool`, each lease lasting `ttl`; [`take`] names the holder.
fn slots(pool: &str, capacity: u32, ttl: Duration) -> Lease<'_> {
    Lease {
        pool,
        holder: "",
        capacity,
        ttl,
    }
}

pub async fn lease_capacity_under_contention(s: SharedStore, p: String) {
    let pool = format!("{p}pool");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (s, pool) = (s.clone(), pool.clone());
            tokio::spawn(async move {
                let got = take(&s, slots(&pool, 7, LONG), &format!("h{i}")).await;
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
    let seven = slots(&pool, 7, LONG);
    assert!(take(&s, seven, &holder).await);
    assert_eq!(s.lease_count(&pool).await.unwrap(), 7);
    assert!(!take(&s, seven, "newcomer").await);
    // Pools are independent.
    let other = format!("{p}other");
    assert_eq!(s.lease_count(&other).await.unwrap(), 0);
    let one = slots(&other, 1, LONG);
    assert!(take(&s, one, "newcomer").await);
    assert!(!take(&s, one, "second").await);
}

pub async fn lease_release_frees_slot(s: SharedStore, p: String) {
    let pool = format!("{p}pool");
    let two = slots(&pool, 2, LONG);
    assert!(take(&s, two, "a").await);
    assert!(take(&s, two, "b").await);
    assert!(!take(&s, two, "c").await);
    s.lease_release(&pool, "nobody").await.unwrap();
    assert_eq!(
        s.lease_count(&pool).await.unwrap(),
        2,
        "releasing a stranger is a no-op"
    );
    s.lease_release(&pool, "a").await.unwrap();
    assert_eq!(s.lease_count(&pool).await.unwrap(), 1);
    assert!(take(&s, two, "c").await);
    assert!(!take(&s, two, "d").await);
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
    let (two, brief) = (slots(&pool, 2, LONG), slots(&pool, 2, short));
    assert!(take(&s, brief, "a").await);
    assert!(take(&s, two, "b").await);
    assert!(!take(&s, brief, "c").await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.lease_count(&pool).await.unwrap(),
        1,
        "a's lease expired, b's did not"
    );
    assert!(take(&s, brief, "c").await);
    assert!(!take(&s, brief, "d").await);
    // When every lease has expired the pool is empty again.
    let lone = format!("{p}lone");
    let alone = slots(&lone, 1, short);
    assert!(take(&s, alone, "x").await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.lease_count(&lone).await.unwrap(), 0);
    assert!(take(&s, alone, "y").await);
}

pub async fn lease_holders_are_the_live_leases(s: SharedStore, p: String) {
    let pool = format!("{p}members");
    assert!(s.lease_holders(&pool).await.unwrap().is_empty());
    let short = Duration::from_millis(250);
    let (ten, brief) = (slots(&pool, 10, LONG), slots(&pool, 10, short));
    assert!(take(&s, ten, "node-b").await);
    assert!(take(&s, brief, "node-a").await);
    assert!(take(&s, ten, "node-c").await);
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
