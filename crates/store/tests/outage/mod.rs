//! Redis-only: a store created while Redis is down, through an outage and a restart on the
//! same port, fails fast while Redis is away and recovers by itself.

use std::time::{Duration, Instant};

use bytes::Bytes;
use floodgate_store::{
    Apply, CounterOp, IdemOutcome, Idempotency, Kv, Lease, Leases, RateLimit, RateLimiting,
    RedisStore, StoreError,
};

/// Asserts the call fails with `Unavailable` and returns promptly (no hang).
async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let r = tokio::time::timeout(Duration::from_secs(6), call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung while redis was down"));
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{what}: {r:?}"
    );
}

/// Waits until the store answers again, without recreating it.
async fn wait_until_up(store: &RedisStore) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.ping().await {
            Ok(()) => return,
            Err(e) => assert!(Instant::now() < deadline, "store did not recover: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_recovers() {
    let Some(mut server) = floodgate_testkit::redis_server_stopped(&[]) else {
        return;
    };
    let url = server.redis_url();

    // Down at start-up: the store is still created, and calls fail fast.
    let store = RedisStore::connect(&url)
        .await
        .expect("connect while redis is down");
    assert_unavailable("ping before start", store.ping()).await;

    server.restart();
    wait_until_up(&store).await;
    assert_eq!(store.incr_by("c", 5).await.unwrap(), 5);
    let ttl = Duration::from_secs(60);
    let add1 = Apply {
        counter: "c",
        op: CounterOp::Add(1),
        key: "k",
        fingerprint: "f",
        ttl,
    };
    let five = RateLimit {
        key: "r",
        limit: 5,
        window: ttl,
    };
    let first = store.idempotent_apply(add1).await.unwrap();
    assert_eq!(first, IdemOutcome::Applied(6));

    // Outage: every kind of call fails with Unavailable, promptly, even many at once.
    server.kill();
    assert_unavailable("get", store.get("c")).await;
    assert_unavailable("incr_by", store.incr_by("c", 1)).await;
    assert_unavailable(
        "idempotent_apply",
        store.idempotent_apply(Apply { key: "k2", ..add1 }),
    )
    .await;
    assert_unavailable("rate_limit", store.rate_limit(five)).await;
    let burst = futures::future::join_all((0..20).map(|i| {
        let store = &store;
        let holder = format!("h{i}");
        async move {
            let lease = Lease {
                pool: "pool",
                holder: &holder,
                capacity: 5,
                ttl,
            };
            store.lease_acquire(lease).await
        }
    }));
    let results = tokio::time::timeout(Duration::from_secs(6), burst)
        .await
        .expect("concurrent calls hung while redis was down");
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(StoreError::Unavailable(_)))));

    // Back on the same port (empty: no persistence): the same store recovers, scripts
    // included (the restarted server's script cache is empty).
    server.restart();
    wait_until_up(&store).await;
    store
        .set("v", Bytes::from_static(b"x"), None)
        .await
        .unwrap();
    assert_eq!(
        store.get("v").await.unwrap(),
        Some(Bytes::from_static(b"x"))
    );
    assert_eq!(store.incr_by("c", 2).await.unwrap(), 2);
    let again = store.idempotent_apply(add1).await.unwrap();
    assert_eq!(again, IdemOutcome::Applied(3));
    let lone = Lease {
        pool: "pool",
        holder: "h",
        capacity: 1,
        ttl,
    };
    assert!(store.lease_acquire(lone).await.unwrap());
    assert!(store.rate_limit(five).await.unwrap().allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stall_times_out_and_recovers() {
    let Some(server) = floodgate_testkit::redis_server(&[]) else {
        return;
    };
    let store = RedisStore::connect(&server.redis_url())
        .await
        .expect("connect");
    assert_eq!(store.incr_by("c", 1).await.unwrap(), 1);

    // A server that accepts bytes but never answers: calls time out instead of hanging.
    server.pause();
    for _ in 0..4 {
        assert_unavailable("incr_by on a frozen server", store.incr_by("c", 1)).await;
    }
    server.resume();
    wait_until_up(&store).await;
    let now = store.get_i64("c").await.unwrap();
    // Timed-out increments may or may not have run (the server got them before freezing):
    // that is why callers pair increments with idempotency records.
    assert!((1..=5).contains(&now), "{now}");
    assert_eq!(store.incr_by("c", 10).await.unwrap(), now + 10);
}
