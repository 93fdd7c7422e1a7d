//! Failures of the store, and many clients on two nodes sharing one sum.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use floodgate_abacus::Settings;

use crate::common::{config, Env, Node, Req};

const UNAVAILABLE: &str = r#"{"detail":"Service temporarily unavailable."}"#;

pub async fn store_outage_is_503_and_retry_applies_once(env: Env) {
    let node = env
        .node(config(|c| {
            c.settings_mut::<Settings>().rate_limit_enabled = true;
            c.settings_mut::<Settings>().rate_limit_requests = 1000;
        }))
        .await;
    node.faults.down.store(true, Ordering::Relaxed);
    for req in [
        Req::get(),
        Req::add(Some("o1"), r#"{"number":5}"#),
        Req::reset(Some("o2"), r#"{"number":5}"#),
    ] {
        let r = node.send(req).await;
        assert_eq!((r.status, r.text.as_str()), (503, UNAVAILABLE), "{r:?}");
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    node.faults.down.store(false, Ordering::Relaxed);

    // The store applies the increment but the reply is lost: 503, and the client's retry
    // with the same key gets the first result instead of a second increment.
    node.faults.lose_reply_every.store(1, Ordering::Relaxed);
    let r = node.send(Req::add(Some("o1"), r#"{"number":5}"#)).await;
    assert_eq!(r.status, 503, "{r:?}");
    node.faults.lose_reply_every.store(0, Ordering::Relaxed);
    let r = node.send(Req::add(Some("o1"), r#"{"number":5}"#)).await;
    assert_eq!((r.status, r.replayed()), (200, true), "{r:?}");
    assert_eq!(r.json()["current_sum"], 5);
    assert_eq!(node.sum().await, 5);
}

/// The number client `c` sends in its request `i`: mixed signs and sizes.
fn number(c: u64, i: u64) -> i64 {
    let x = (c * 7919 + i * 104_729) % 2_000_003;
    let n = i64::try_from(x).unwrap_or(0) - 1_000_001;
    // Every tenth is large (a plain `%` test, as `is_multiple_of` is newer than our MSRV).
    match i % 10 {
        0 => n * 1_000_000_000,
        _ => n,
    }
}

pub async fn two_nodes_exact_sum_under_faults(env: Env) {
    // 100 clients send 100 numbers each through two nodes sharing one store. Both nodes
    // lose some replies after applying and fail some calls before applying; clients retry
    // every 5xx or transport error on the other node with the same key.
    const CLIENTS: u64 = 100;
    const EACH: u64 = 100;
    let cfg = || config(|_| {});
    let nodes = Arc::new([env.node(cfg()).await, env.node(cfg()).await]);
    for (node, (lose, fail)) in nodes.iter().zip([(37, 53), (41, 59)]) {
        node.faults.lose_reply_every.store(lose, Ordering::Relaxed);
        node.faults.fail_every.store(fail, Ordering::Relaxed);
    }
    let retries = Arc::new(AtomicU64::new(0));
    let replays = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (nodes, retries, replays) = (nodes.clone(), retries.clone(), replays.clone());
            tokio::spawn(async move {
                for i in 0..EACH {
                    let key = format!("c{c}-{i}");
                    let body = format!(r#"{{"number":{}}}"#, number(c, i));
                    let mut turn = (c + i) as usize;
                    loop {
                        let node: &Node = &nodes[turn % 2];
                        match node.try_send(Req::add(Some(&key), &body)).await {
                            Ok(r) if r.status == 200 => {
                                if r.replayed() {
                                    replays.fetch_add(1, Ordering::Relaxed);
                                }
                                break;
                            }
                            Ok(r) if r.status >= 500 => {}
                            Ok(r) => panic!("unexpected {r:?}"),
                            Err(e) => eprintln!("transport error, retrying: {e}"),
                        }
                        retries.fetch_add(1, Ordering::Relaxed);
                        turn += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client task");
    }
    let expected: i64 = (0..CLIENTS)
        .flat_map(|c| (0..EACH).map(move |i| number(c, i)))
        .sum();
    assert_eq!(nodes[0].sum().await, expected);
    assert_eq!(nodes[1].sum().await, expected);
    let lost: u64 = nodes
        .iter()
        .map(|n| n.faults.lost.load(Ordering::Relaxed))
        .sum();
    let failed: u64 = nodes
        .iter()
        .map(|n| n.faults.failed.load(Ordering::Relaxed))
        .sum();
    assert!(
        lost > 0 && failed > 0,
        "faults were injected: {lost} lost, {failed} failed"
    );
    assert!(retries.load(Ordering::Relaxed) >= lost + failed);
    // A replay answers a key whose earlier attempt was applied but not answered, so there
    // is one at least, and never more than the replies lost.
    let replays = replays.load(Ordering::Relaxed);
    assert!(
        (1..=lost).contains(&replays),
        "{replays} replays, {lost} lost"
    );
}
