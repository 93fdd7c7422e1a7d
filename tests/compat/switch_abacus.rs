//! Switching over from seed 004 (issue 22): floodgate on the seed's environment and Redis
//! continues the seed's running sum exactly, adopting it once.

use std::time::Duration;

use floodgate_store::{Kv, RedisStore};

use super::switch_env::seed_004_env;
use super::*;

const SEED_KEY: &str = "abacus:running_sum";
const OUR_KEY: &str = "abacus:sum";
const MARKER: &str = "abacus:sum:adopted";
const API_KEY: &str = "local-dev-key";

async fn node_on_seed_env(dir: &TempDir, redis_port: u16) -> floodgate::Running {
    let (cfg, _) = seed_env(dir, &seed_004_env(redis_port)).expect("seed 004 env loads");
    started(on_test_port(cfg, dir)).await
}

async fn get_sum(http: &reqwest::Client, node: &floodgate::Running) -> (u16, String) {
    let r = call(
        http.get(url(node, "/abacus/sum"))
            .header("x-api-key", API_KEY),
    )
    .await;
    (r.0, r.2)
}

async fn add(http: &reqwest::Client, node: &floodgate::Running, n: i64) -> (u16, String) {
    let r = call(
        http.post(url(node, "/abacus/number"))
            .header("x-api-key", API_KEY)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&serde_json::json!({ "number": n })),
    )
    .await;
    (r.0, r.2)
}

async fn text(store: &RedisStore, key: &str) -> Option<String> {
    let v = store.get(key).await.expect("redis get");
    v.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The seed's sum as its Lua writes it (integers, float forms, near the i64 limits): the
/// first request on floodgate reads it exactly, the next write continues from it, and the
/// seed's key is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_sum_carries_on_exactly() {
    let cases: &[(&str, i64, i64)] = &[
        ("42", 42, 8),
        ("-7", -7, 7),
        ("1e+14", 100_000_000_000_000, 1),
        ("9.2233720368547748e+18", 9_223_372_036_854_774_784, 1023),
        ("9223372036854775807", i64::MAX, -1),
        ("-9223372036854775808", i64::MIN, 1),
    ];
    let Some((redis, store)) = redis_store(&[]).await else {
        return;
    };
    let http = reqwest::Client::new();
    for (raw, value, delta) in cases {
        for key in [SEED_KEY, OUR_KEY, MARKER] {
            store.del(key).await.expect("del");
        }
        store.set(SEED_KEY, (*raw).into(), None).await.expect("set");
        let dir = TempDir::new();
        let node = node_on_seed_env(&dir, redis.port).await;
        assert_eq!(
            get_sum(&http, &node).await,
            (200, format!(r#"{{"current_sum":{value}}}"#)),
            "seed text {raw}"
        );
        let after = value + delta;
        let (status, body) = add(&http, &node, *delta).await;
        assert_eq!(status, 200, "{raw}: {body}");
        assert!(
            body.contains(&format!(r#""current_sum":{after}"#)),
            "{raw}: {body}"
        );
        assert_eq!(
            text(&store, SEED_KEY).await.as_deref(),
            Some(*raw),
            "seed key kept"
        );
        assert_eq!(text(&store, MARKER).await.as_deref(), Some(*raw));
        stop_any(node).await;

        // A later start never adopts again, even when the seed's key changed since (a seed
        // node left running).
        store.set(SEED_KEY, "5".into(), None).await.expect("set");
        let node = node_on_seed_env(&dir, redis.port).await;
        assert_eq!(
            get_sum(&http, &node).await,
            (200, format!(r#"{{"current_sum":{after}}}"#)),
            "{raw}: adopted twice"
        );
        stop_any(node).await;
    }
}

/// Several nodes starting at once on the seed's data adopt it once: every add counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_adopt_once() {
    let Some((redis, _store)) = redis_store(&[(SEED_KEY, "1e+15")]).await else {
        return;
    };
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new()).collect();
    let mut nodes = Vec::new();
    for d in &dirs {
        nodes.push(node_on_seed_env(d, redis.port).await);
    }
    let http = reqwest::Client::new();
    let adds = (0..30).map(|i| {
        let (http, node) = (http.clone(), &nodes[i % 3]);
        async move { add(&http, node, 1).await.0 }
    });
    let statuses = futures::future::join_all(adds).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        get_sum(&http, &nodes[0]).await.1,
        r#"{"current_sum":1000000000000030}"#
    );
    for node in nodes {
        stop_any(node).await;
    }
}

/// What floodgate will not guess: a seed value that is no whole 64-bit number is refused
/// (500, logged) and left alone; a sum floodgate already keeps is never overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unadoptable_or_competing_sums_are_left_alone() {
    let Some((redis, store)) = redis_store(&[]).await else {
        return;
    };
    let http = reqwest::Client::new();
    let dir = TempDir::new();

    store.set(SEED_KEY, "1.5".into(), None).await.expect("set");
    let node = node_on_seed_env(&dir, redis.port).await;
    assert_eq!(get_sum(&http, &node).await.0, 500);
    assert_eq!(add(&http, &node, 1).await.0, 500);
    assert_eq!(text(&store, OUR_KEY).await, None);
    // Fixed by the operator: the next request adopts it.
    store.set(SEED_KEY, "12".into(), None).await.expect("set");
    assert_eq!(
        get_sum(&http, &node).await,
        (200, r#"{"current_sum":12}"#.into())
    );
    stop_any(node).await;

    for key in [SEED_KEY, OUR_KEY, MARKER] {
        store.del(key).await.expect("del");
    }
    store.set(SEED_KEY, "100".into(), None).await.expect("set");
    store.set(OUR_KEY, "5".into(), None).await.expect("set");
    let node = node_on_seed_env(&dir, redis.port).await;
    assert_eq!(
        get_sum(&http, &node).await,
        (200, r#"{"current_sum":5}"#.into())
    );
    assert_eq!(text(&store, SEED_KEY).await.as_deref(), Some("100"));
    node.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), node.done).await;
}
