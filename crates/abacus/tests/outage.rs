//! Redis-only: a real outage. Two nodes share a redis-server this test owns (append-only
//! file, fsync on every write, so whatever Redis acknowledged survives a kill -9). Clients
//! keep adding numbers, retrying with the same Idempotency-Key; the server is killed mid-run
//! (503 with Retry-After), restarted on the same port from its file, and the final sum is
//! exactly what the clients sent.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, until_count, Node, Req, TestStore};
use floodgate_store::RedisStore;

async fn node(url: &str) -> Node {
    let store = RedisStore::connect(url).await.expect("valid url");
    Node::start(TestStore::new(Arc::new(store), ""), config(|_| {})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_sum_stays_exact() {
    let dir =
        std::env::temp_dir().join(format!("floodgate-abacus-outage-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Append-only file with fsync on every write: what Redis acknowledged survives kill -9.
    let aof = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir.to_str().expect("utf-8 temp dir"),
    ];
    let Some(mut server) = floodgate_testkit::redis_server(&aof) else {
        return;
    };
    let url = server.redis_url();
    let nodes = Arc::new([node(&url).await, node(&url).await]);

    const CLIENTS: u64 = 20;
    const EACH: u64 = 60;
    let done = Arc::new(AtomicU64::new(0));
    let unavailable = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (nodes, done, unavailable) = (nodes.clone(), done.clone(), unavailable.clone());
            tokio::spawn(async move {
                for i in 0..EACH {
                    let key = format!("c{c}-{i}");
                    let body = format!(r#"{{"number":{}}}"#, c * 1000 + i + 1);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut turn = (c + i) as usize;
                    loop {
                        let r = nodes[turn % 2].send(Req::add(Some(&key), &body)).await;
                        match r.status {
                            200 => break,
                            503 => {
                                assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
                                unavailable.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => panic!("unexpected {r:?}"),
                        }
                        assert!(Instant::now() < deadline, "no recovery for {key}");
                        turn += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    // Spread the run out so the outage lands in the middle of it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();

    let total = CLIENTS * EACH;
    until_count(&done, total / 3).await;
    server.kill();
    let killed_at = done.load(Ordering::Relaxed);
    let wait_for_503 = Instant::now() + Duration::from_secs(10);
    while unavailable.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < wait_for_503, "no 503 while redis was down");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();

    for c in clients {
        c.await.expect("client task");
    }
    assert!(
        killed_at < total,
        "the outage hit before the clients finished"
    );
    eprintln!(
        "killed after {killed_at}/{total} sums; {} answers were 503",
        unavailable.load(Ordering::Relaxed)
    );
    let expected: i64 = (0..CLIENTS)
        .flat_map(|c| (0..EACH).map(move |i| (c * 1000 + i + 1) as i64))
        .sum();
    assert_eq!(nodes[0].sum().await, expected);
    assert_eq!(nodes[1].sum().await, expected);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
