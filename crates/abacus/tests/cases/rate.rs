//! The per-caller rate limit: 429 with headers, scoping, and the strict sliding window
//! across two nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_abacus::Settings;

use crate::common::{config, limit_rate, Env, Req, Resp, KEY2};

pub async fn rate_limit_refuses_with_headers(env: Env) {
    let node = env
        .node(config(|c| limit_rate(c, 3, Duration::from_secs(60))))
        .await;
    let reqs = [
        Req::get(),
        Req::add(Some("l1"), r#"{"number":1}"#),
        Req::reset(None, r#"{"number":2}"#),
    ];
    for (i, req) in reqs.into_iter().enumerate() {
        let r = node.send(req).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header_u64("ratelimit-limit"), 3);
        assert_eq!(r.header_u64("ratelimit-remaining"), 2 - i as u64);
        assert!((1..=60).contains(&r.header_u64("ratelimit-reset")), "{r:?}");
    }
    let r = node.send(Req::add(Some("l2"), r#"{"number":40}"#)).await;
    assert_limited(&r, 3);
    // The refused request changed nothing and left no record: another key is fine later.
    let other = node.send(Req::get().key(Some(KEY2))).await;
    assert_eq!(other.status, 200, "limits are per API key: {other:?}");
    assert_eq!(other.json()["current_sum"], 2);
    // Auth failures are answered before the limiter counts anything.
    let r = node.send(Req::get().key(Some("wrong"))).await;
    assert_eq!(r.status, 403, "{r:?}");
}

pub async fn rate_limit_per_client_address_without_auth(env: Env) {
    let node = env
        .node(config(|c| {
            c.settings_mut::<Settings>().auth_enabled = false;
            limit_rate(c, 2, Duration::from_secs(60));
        }))
        .await;
    // Different API keys, one address: one bucket.
    assert_eq!(node.send(Req::get().key(None)).await.status, 200);
    assert_eq!(node.send(Req::get().key(Some(KEY2))).await.status, 200);
    let r = node.send(Req::get().key(Some("x"))).await;
    assert_eq!(r.status, 429, "{r:?}");
}

pub async fn rate_limit_holds_across_two_nodes(env: Env) {
    // Six clients alternate between two nodes for about 2.6 windows, one API key.
    let (limit, window) = (20u32, Duration::from_secs(1));
    let cfg = || config(|c| limit_rate(c, limit, window));
    let nodes = Arc::new([env.node(cfg()).await, env.node(cfg()).await]);
    let run_for = window * 13 / 5;
    let start = Instant::now();
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                let mut admitted = Vec::new();
                let mut refused = 0u32;
                let mut i = c;
                while start.elapsed() < run_for {
                    let sent = Instant::now();
                    let r = nodes[i % 2].send(Req::get()).await;
                    match r.status {
                        200 => admitted.push((sent, Instant::now())),
                        429 => {
                            refused += 1;
                            assert_eq!(r.header_u64("retry-after"), 1, "{r:?}");
                        }
                        _ => panic!("unexpected {r:?}"),
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (admitted, refused)
            })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for c in clients {
        let (a, r) = c.await.expect("client task");
        admitted.extend(a);
        refused += r;
    }
    assert!(refused > 0, "the clients asked for more than the limit");
    assert!(
        admitted.len() >= 2 * limit as usize,
        "slots come back as they leave the window: only {} admitted",
        admitted.len()
    );
    floodgate_testkit::assert_at_most_limit_in_any_window(admitted, limit as usize, window);
}

/// Admissions as (sent, answered): the store admitted each in between, so `limit + 1` of
/// them truly within one window would show as a group with `max(answered) - min(sent)`
/// under the window. Timing noise can only widen the groups, never fail a correct limiter.
/// `r` is the seed's 429 with the limiter's headers: nothing left of `limit`.
fn assert_limited(r: &Resp, limit: u64) {
    assert_eq!(
        (r.status, r.text.as_str()),
        (429, r#"{"detail":"Rate limit exceeded."}"#)
    );
    assert!((1..=60).contains(&r.header_u64("retry-after")), "{r:?}");
    assert_eq!(r.header_u64("ratelimit-remaining"), 0);
    assert_eq!(r.header_u64("ratelimit-limit"), limit);
}

/// A write checks the limit inside its one store call; what each answer says is what it
/// said when the limit ran first: within the limit a refused body or key is its own 400
/// and still counts, a replay and a mismatch count, and over the limit every write is a
/// 429 that changes and records nothing.
pub async fn rate_limit_on_writes_counts_as_if_checked_first(env: Env) {
    let limited = |c: &mut floodgate_core::Config| limit_rate(c, 5, Duration::from_secs(60));
    let node = env.node(config(limited)).await;
    let long = "k".repeat(201);
    let within = [
        (Req::add(Some("w1"), r#"{"number":true}"#), 400),
        (Req::add(None, r#"{"number":1}"#), 400),
        (Req::reset(Some(&long), r#"{"number":1}"#), 400),
        (Req::add(Some("w1"), r#"{"number":2}"#), 200),
        (Req::add(Some("w1"), r#"{"number":2}"#), 200),
    ];
    for (i, (req, status)) in within.into_iter().enumerate() {
        let r = node.send(req).await;
        assert_eq!(r.status, status, "request {i}: {r:?}");
        assert_eq!(r.header_u64("ratelimit-limit"), 5);
        assert_eq!(r.header_u64("ratelimit-remaining"), 4 - i as u64, "{r:?}");
        assert!((1..=60).contains(&r.header_u64("ratelimit-reset")), "{r:?}");
        assert_eq!(r.header("retry-after"), None, "{r:?}");
    }
    let over = [
        Req::add(Some("w2"), r#"{"number":7}"#),
        Req::add(Some("w1"), r#"{"number":2}"#),
        Req::add(Some("w1"), r#"{"number":3}"#),
        Req::add(Some("w3"), r#"{"number":true}"#),
        Req::add(None, r#"{"number":7}"#),
        Req::add(Some(&long), r#"{"number":7}"#),
        Req::reset(Some("w4"), r#"{"number":9}"#),
        Req::reset(None, r#"{"number":9}"#),
        Req::reset(None, "not json"),
    ];
    for req in over {
        let r = node.send(req).await;
        assert_limited(&r, 5);
        assert!((1..=60).contains(&r.header_u64("ratelimit-reset")), "{r:?}");
    }
    // A node without the limit on the same store: the refused writes changed nothing and
    // left no record (w2 applies now, and is not a replay).
    let free = env.node(config(|_| {})).await;
    assert_eq!(free.sum().await, 2);
    let r = free.send(Req::add(Some("w2"), r#"{"number":7}"#)).await;
    assert_eq!((r.status, r.replayed()), (200, false), "{r:?}");
    assert_eq!(r.json()["current_sum"], 9);
    let r = free.send(Req::add(Some("w1"), r#"{"number":2}"#)).await;
    assert_eq!((r.status, r.replayed()), (200, true), "{r:?}");
    assert_eq!(r.json()["current_sum"], 2);
    // Replays and mismatches count: one slot each.
    let other = env
        .node(config(|c| {
            limited(c);
            c.settings_mut::<Settings>().rate_limit_requests = 3;
        }))
        .await;
    let sends = [
        (r#"{"number":2}"#, 200, false, 2),
        (r#"{"number":2}"#, 200, true, 1),
        (r#"{"number":5}"#, 409, false, 0),
    ];
    for (body, status, replayed, remaining) in sends {
        let r = other.send(Req::add(Some("w1"), body).key(Some(KEY2))).await;
        assert_eq!((r.status, r.replayed()), (status, replayed), "{r:?}");
        assert_eq!(r.header_u64("ratelimit-remaining"), remaining, "{r:?}");
    }
    let r = other
        .send(Req::add(Some("w1"), r#"{"number":2}"#).key(Some(KEY2)))
        .await;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(free.sum().await, 11);
}
