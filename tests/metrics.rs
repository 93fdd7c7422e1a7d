//! /metrics after driving every service through one embedded node: each layer's series is
//! there with the values the traffic implies (HTTP, admission, cache, bus, workers,
//! database, process).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Sum of the samples of `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric = series.split('{').next().unwrap_or(series);
        if metric != name || !labels.iter().all(|l| series.contains(l)) {
            continue;
        }
        *found.get_or_insert(0.0) += value.parse::<f64>().ok()?;
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_layer_reports_what_the_traffic_did() {
    let dir = TempDir::new();
    let node = start(all_services_config(&dir, "metrics-secret")).await;
    let http = reqwest::Client::new();

    for _ in 0..3 {
        let r: Value = post_json(&http, &url(&node, "/queue")).await;
        assert!(r["gift_code"].is_string(), "{r}");
    }

    let r: Value = post_json(&http, &url(&node, "/generate?n=100")).await;
    let id = r["request_id"].as_str().unwrap().to_string();
    let done = eventually(Duration::from_secs(10), || async {
        let s = get_json(&http, &url(&node, &format!("/status/{id}"))).await;
        s["status"] == "complete"
    })
    .await;
    assert!(done, "prime job never completed");

    let jwt = floodgate_todos::mint_token("metrics-secret", "u1", Duration::from_secs(60)).unwrap();
    let write = http.post(url(&node, "/todos")).bearer_auth(&jwt);
    let created = send_json(write.json(&json!({"title": "measured"}))).await;
    let todo = url(
        &node,
        &format!("/todos/{}", created["id"].as_str().unwrap()),
    );
    assert!(until_status(&http, &todo, 200, Duration::from_secs(10)).await);
    // A miss fills the cache; a later read is a near-cache hit once the version poller has
    // confirmed the version the write moved (it may do so between two reads, which makes
    // the second one a miss again).
    let near_hit = eventually(Duration::from_secs(5), || async {
        let r = http.get(url(&node, "/todos?limit=5")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let text = get_text(&http, &url(&node, "/metrics")).await;
        sample(&text, "todos_cache_hits_total", &["tier=\"near\""]).unwrap_or(0.0) >= 1.0
    })
    .await;
    assert!(near_hit, "no list read was served from the near-cache");

    let add = http
        .post(url(&node, "/abacus/number"))
        .header("X-API-Key", "k1")
        .header("Idempotency-Key", "m1")
        .json(&json!({"number": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(add.status(), 200);

    let text = get_text(&http, &url(&node, "/metrics")).await;
    let at_least = |name: &str, labels: &[&str], min: f64| {
        let v = sample(&text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} missing"));
        assert!(v >= min, "{name} {labels:?} = {v}, expected at least {min}");
    };
    // HTTP, by route template and status.
    at_least(
        "http_requests_total",
        &["handler=\"/queue\"", "status=\"200\""],
        3.0,
    );
    at_least(
        "http_request_duration_seconds_count",
        &["handler=\"/todos/{id}\""],
        1.0,
    );
    // Admission: nothing held once the answers are out.
    assert_eq!(sample(&text, "admission_in_flight", &[]), Some(0.0));
    // Gift codes and their bus traffic.
    at_least("giftcode_codes_issued_total", &[], 3.0);
    at_least("bus_messages_produced_total", &["topic=\"tasks\""], 3.0);
    // floodgate's worker answers on the node's reply-slot topic (`results.0` when alone).
    at_least("bus_messages_consumed_total", &["topic=\"results.0\""], 3.0);
    // Prime worker durations with the seed's buckets.
    at_least(
        "prime_task_duration_milliseconds_bucket",
        &["le=\"60000\""],
        1.0,
    );
    at_least("prime_jobs_completed_total", &["result=\"complete\""], 1.0);
    // Todos: the write applied, the reads missed once and hit after.
    at_least(
        "todos_commands_applied_total",
        &["action=\"create\"", "result=\"applied\""],
        1.0,
    );
    at_least("todos_cache_misses_total", &[], 1.0);
    at_least("todos_cache_hits_total", &["tier=\"near\""], 1.0);
    at_least(
        "db_query_duration_seconds_count",
        &["query=\"todos.apply_batch\""],
        1.0,
    );
    at_least(
        "db_query_duration_seconds_count",
        &["query=\"todos.list\""],
        1.0,
    );
    // Abacus under the seed's names.
    at_least(
        "abacus_request_total",
        &["endpoint=\"/abacus/number\"", "status=\"200\""],
        1.0,
    );
    // The in-process bus has delivered everything it was given.
    assert!(
        sample(&text, "bus_consumer_lag", &[]).is_some(),
        "no lag series"
    );
    at_least("process_resident_memory_bytes", &[], 1.0);
    node.shutdown.cancel();
}
