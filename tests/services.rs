//! Every service through one real node, as `floodgate serve` wires it: the routes are
//! mounted, the workers run, and the OpenAPI document lists every route.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_serves_every_service_end_to_end() {
    let dir = TempDir::new();
    let mut cfg = all_services_config(&dir, "dev-secret");
    cfg.settings_mut::<floodgate_todos::Settings>()
        .cache_staleness = Duration::from_millis(100);
    let node = start(cfg).await;
    let http = reqwest::Client::new();

    // Gift codes: the in-process worker answers.
    let r: Value = post_json(&http, &url(&node, "/queue")).await;
    assert!(r["gift_code"].as_str().unwrap().starts_with("GIFT-"), "{r}");

    // Prime jobs: submitted, computed by the in-process worker, served.
    let r: Value = post_json(&http, &url(&node, "/generate?n=10")).await;
    let id = r["request_id"].as_str().unwrap().to_string();
    let done = eventually(Duration::from_secs(10), || async {
        let s: Value = get_json(&http, &url(&node, &format!("/status/{id}"))).await;
        s["status"] == "complete"
    })
    .await;
    assert!(done, "prime job never completed");
    let s: Value = get_json(&http, &url(&node, &format!("/status/{id}"))).await;
    assert_eq!(s["result"], json!([2, 3, 5, 7, 11, 13, 17, 19, 23, 29]));

    // Abacus: authenticated, idempotent.
    let add = |key: &'static str| {
        http.post(url(&node, "/abacus/number"))
            .header("X-API-Key", "k1")
            .header("Idempotency-Key", key)
            .json(&json!({"number": 5}))
            .send()
    };
    assert_eq!(add("a").await.unwrap().status(), 200);
    let replay = add("a").await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let sum = send_json(
        http.get(url(&node, "/abacus/sum"))
            .header("X-API-Key", "k1"),
    )
    .await;
    assert_eq!(sum, json!({"current_sum": 5}));

    let doc: Value = get_json(&http, &url(&node, "/openapi.json")).await;
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    for p in [
        "/",
        "/queue",
        "/generate",
        "/status/{request_id}",
        "/abacus/sum",
        "/abacus/number",
        "/health",
        "/ready",
        "/metrics",
    ] {
        assert!(
            paths.contains(&p),
            "{p} missing from /openapi.json: {paths:?}"
        );
    }
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primes_max_queued_bounds_the_backlog() {
    let dir = TempDir::new();
    let mut cfg = embedded_config(&dir);
    cfg.settings_mut::<floodgate_primes::Settings>().max_queued = 2;
    // No workers: submitted jobs stay queued.
    let opts = floodgate::StartOptions {
        workers: false,
        http: true,
    };
    let node = floodgate::start(cfg, opts).await.unwrap();
    let http = reqwest::Client::new();
    let submit = || http.post(url(&node, "/generate?n=5")).send();
    assert_eq!(submit().await.unwrap().status(), 200);
    assert_eq!(submit().await.unwrap().status(), 200);
    let full = submit().await.unwrap();
    assert_eq!(full.status(), 503);
    assert!(full.headers().contains_key("retry-after"));
    node.shutdown.cancel();
}

/// The real binary selects Redis Cluster from its URL, as docs/operations.md tells users to
/// set it (`REDIS_URL=redis+cluster://…`), and abacus keys its records on it. The start-up
/// check once refused that URL although the store accepted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_on_a_redis_cluster_url() {
    let Some(cluster) = floodgate_testkit::env_or_skip("FLOODGATE_TEST_REDIS_CLUSTER_URL") else {
        return;
    };
    let dir = TempDir::new();
    let addr = format!("127.0.0.1:{}", free_port());
    let _node = Killed(
        binary()
            .arg("serve")
            .current_dir(dir.path())
            .env("REDIS_URL", &cluster)
            .env("FLOODGATE_LISTEN", &addr)
            .env("FLOODGATE_WORKERS", "")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn floodgate"),
    );
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    assert!(healthy(&http, &base, Duration::from_secs(60)).await);
    let ready = get_json(&http, &format!("{base}/ready")).await;
    assert_eq!(
        ready["checks"]["store"]["backend"], "redis-cluster",
        "{ready}"
    );
    let key = format!("cluster-url-{}", std::process::id());
    let add = || {
        http.post(format!("{base}/abacus/number"))
            .header("X-API-Key", TEST_API_KEY)
            .header("Idempotency-Key", &key)
            .json(&json!({"number": 7}))
    };
    let first = add().send().await.unwrap();
    assert_eq!(first.status(), 200);
    let sum = first.json::<Value>().await.unwrap()["current_sum"].clone();
    let again = add().send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["current_sum"], sum);
}
