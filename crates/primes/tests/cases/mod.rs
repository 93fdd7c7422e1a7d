//! Behaviour every backend set must show; instantiated per set in `backends.rs`.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::StatusCode;
use floodgate_bus::Outgoing;
use floodgate_store::{Kv, Leases};
use futures::stream::{self, StreamExt};
use serde_json::json;

use crate::common::trial::trial_division;
use crate::common::{App, Setup};

/// Jobs in the burst test (Tansu takes them in a few seconds too, so no smaller count).
const BURST: usize = 10_000;

pub async fn submit_then_poll_returns_the_primes(setup: Setup) {
    let app = App::new(&setup, |_, _| {}).await;
    let _workers = app.start_workers();

    let by_query = app.submit(10).await;
    let r = app.post("/generate", r#"{"n":25}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let by_body = r.json["request_id"].as_str().unwrap().to_string();
    let big = app.submit(3000).await;

    assert_eq!(
        app.wait_complete(&by_query).await,
        vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    );
    assert_eq!(app.wait_complete(&by_body).await, trial_division(25));
    assert_eq!(app.wait_complete(&big).await, trial_division(3000));
    // The whole body, as documented: result present, no error member.
    let body = app.status(&by_query).await.json;
    assert_eq!(
        body,
        json!({"status": "complete", "result": [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]})
    );
}

pub async fn a_job_is_pending_until_a_worker_runs_it(setup: Setup) {
    let app = App::new(&setup, |_, _| {}).await;
    let id = app.submit(5).await;
    let r = app.status(&id).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"status": "pending", "result": null}));
    assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
    let _workers = app.start_workers();
    assert_eq!(app.wait_complete(&id).await, vec![2, 3, 5, 7, 11]);
}

pub async fn invalid_requests_are_refused(setup: Setup) {
    let app = App::new(&setup, |c, _| {
        c.settings_mut::<floodgate_primes::Settings>().max_n = 1000
    })
    .await;
    let cases: &[(&str, &str, u16)] = &[
        ("/generate?n=0", "", 400),
        ("/generate?n=-5", "", 400),
        ("/generate", r#"{"n":0}"#, 400),
        ("/generate", "", 422),
        ("/generate?n=abc", "", 422),
        ("/generate?n=1.5", "", 422),
        ("/generate?n=", "", 422),
        ("/generate", r#"{"n":"10"}"#, 422),
        ("/generate", r#"{"n":1.5}"#, 422),
        ("/generate", r#"{"m":3}"#, 422),
        ("/generate", "not json", 422),
        ("/generate?n=1001", "", 422),
        ("/generate", r#"{"n":5000}"#, 422),
    ];
    for (uri, body, want) in cases {
        let r = app.post(uri, body).await;
        assert_eq!(r.status.as_u16(), *want, "{uri} {body}: {}", r.raw);
        if *want == 400 {
            assert_eq!(r.json, json!({"detail": "n must be a positive integer"}));
        } else {
            let first = &r.json["detail"][0];
            assert!(first["loc"].is_array(), "{uri} {body}: {}", r.raw);
            assert!(
                first["msg"].is_string() && first["type"].is_string(),
                "{}",
                r.raw
            );
        }
    }
    // FastAPI's exact shape for the common ones.
    let r = app.post("/generate", "").await;
    assert_eq!(r.json["detail"][0]["loc"], json!(["query", "n"]));
    assert_eq!(r.json["detail"][0]["type"], "missing");
    let r = app.post("/generate?n=abc", "").await;
    assert_eq!(r.json["detail"][0]["type"], "int_parsing");
    assert_eq!(r.json["detail"][0]["input"], "abc");
    let r = app.post("/generate", r#"{"n":"10"}"#).await;
    assert_eq!(r.json["detail"][0]["loc"], json!(["body", "n"]));
    // The limit is named.
    let r = app.post("/generate?n=1001", "").await;
    assert!(
        r.json["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("1000"),
        "{}",
        r.raw
    );
    assert_eq!(r.json["detail"][0]["ctx"]["le"], 1000);
    // n = max is fine.
    assert_eq!(
        app.post("/generate?n=1000", "").await.status,
        StatusCode::OK
    );

    // Unknown, malformed and never-issued ids are 404, not "pending".
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_string(),
        "123".to_string(),
    ] {
        let r = app.status(&id).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(r.json, json!({"detail": "Unknown request_id"}));
    }
    // Refused requests left nothing queued: the only accepted one holds the only slot.
    let pool = format!("primes:queue:{}", app.topic());
    assert_eq!(setup.store.lease_count(&pool).await.unwrap(), 1);
}

pub async fn a_burst_of_jobs_all_complete(setup: Setup) {
    let app = App::new(&setup, |_, _| {}).await;
    let _workers = app.start_workers();
    let sizes: Vec<u64> = (0..BURST as u64).map(|i| 1 + i % 50).collect();
    let reference = trial_division(50);

    let ids: Vec<(String, u64)> = stream::iter(sizes)
        .map(|n| {
            let app = &app;
            async move { (app.submit(n).await, n) }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let mut seen = HashMap::new();
    for (id, n) in &ids {
        assert!(seen.insert(id.clone(), *n).is_none(), "duplicate id {id}");
    }
    let checked: usize = stream::iter(ids)
        .map(|(id, n)| {
            let app = &app;
            let want = &reference[..n as usize];
            async move {
                assert_eq!(app.wait_complete(&id).await, want, "job {id} n={n}");
                1
            }
        })
        .buffer_unordered(100)
        .fold(0, |a, b| async move { a + b })
        .await;
    assert_eq!(checked, BURST);
    // Every finished job gave its queue slot back.
    let pool = format!("primes:queue:{}", app.topic());
    assert_eq!(setup.store.lease_count(&pool).await.unwrap(), 0);
}

pub async fn records_expire_after_the_ttl(setup: Setup) {
    let app = App::new(&setup, |c, _| {
        c.settings_mut::<floodgate_primes::Settings>().result_ttl = Duration::from_secs(1)
    })
    .await;
    let workers = app.start_workers();
    // With a 1 s TTL a job can expire before a Kafka consumer has joined: join first.
    app.warm_up().await;
    let done = app.submit(4).await;
    assert_eq!(app.wait_complete(&done).await, vec![2, 3, 5, 7]);
    workers.stop().await;
    // A job nobody runs: pending, then unknown.
    let never_run = app.submit(3).await;
    assert_eq!(app.status(&never_run).await.json["status"], "pending");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for id in [&never_run, &done] {
        let r = app.status(id).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}: {}", r.raw);
    }
}

/// A worker takes a job, marks it running and dies without committing: the job is handed
/// to the next worker, which completes it.
pub async fn a_job_of_a_killed_worker_is_redelivered(setup: Setup) {
    let app = App::new(&setup, |_, _| {}).await;
    let id = app.submit(1000).await;

    let (got_tx, got_rx) = tokio::sync::oneshot::channel();
    let bus = setup.bus.clone();
    let store = setup.store.clone();
    let (topic, group) = (app.topic().to_string(), app.opts.group.clone());
    let doomed = tokio::spawn(async move {
        let mut consumer = bus.subscribe(&topic, &group).await.expect("subscribe");
        let msg = consumer.recv().await.expect("the job arrives");
        let job: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        let key = format!("primes:status:{}", job["request_id"].as_str().unwrap());
        store
            .set(&key, r#"{"status":"running","result":null}"#.into(), None)
            .await
            .unwrap();
        let _ = got_tx.send(job);
        // Busy "computing" until killed; never commits.
        std::future::pending::<()>().await;
        drop(consumer);
    });
    let job = tokio::time::timeout(setup.patience, got_rx)
        .await
        .expect("the doomed worker got the job")
        .expect("sent");
    assert_eq!(job["request_id"], id.as_str());
    assert_eq!(job["n"], 1000);
    assert_eq!(app.status(&id).await.json["status"], "running");
    doomed.abort();
    let _ = doomed.await;

    let _workers = app.start_workers();
    assert_eq!(app.wait_complete(&id).await, trial_division(1000));
    if app.lag().is_some() {
        wait_until(|| app.lag() == Some(0)).await;
    }
}

pub async fn a_full_queue_answers_503_until_jobs_finish(setup: Setup) {
    let app = App::new(&setup, |_, o| o.max_queued = 3).await;
    let ids = [
        app.submit(2).await,
        app.submit(3).await,
        app.submit(4).await,
    ];
    let r = app.post("/generate?n=5", "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    assert!(r.headers.contains_key(RETRY_AFTER));
    assert!(r.json["detail"].is_string(), "{}", r.raw);

    let _workers = app.start_workers();
    for id in &ids {
        app.wait_complete(id).await;
    }
    // Slots come back as jobs finish.
    let again = app.submit(5).await;
    assert_eq!(app.wait_complete(&again).await, vec![2, 3, 5, 7, 11]);
}

pub async fn a_poison_message_is_skipped(setup: Setup) {
    let app = App::new(&setup, |_, _| {}).await;
    for payload in ["not json", r#"{"n":5}"#] {
        setup
            .bus
            .publish(Outgoing {
                topic: app.topic(),
                key: Some(b"poison"),
                payload: payload.as_bytes(),
                headers: &[],
            })
            .await
            .unwrap();
    }
    let id = app.submit(6).await;
    let _workers = app.start_workers();
    assert_eq!(app.wait_complete(&id).await, vec![2, 3, 5, 7, 11, 13]);
    // Embedded: everything, poison included, is committed, so nothing is retried forever.
    if app.lag().is_some() {
        wait_until(|| app.lag() == Some(0)).await;
    }
}

/// At stop, a job that is still running (here: stuck writing its result) is waited for
/// and committed, not dropped.
pub async fn stop_waits_for_running_jobs(setup: Setup) {
    let app = App::new(&setup, |_, _| {}).await;
    let id = app.submit(100).await;
    // Claiming (compare-and-set) works, storing the result does not, until healed.
    setup.store.fail_sets(true);
    let workers = app.start_workers();
    app.wait_for(&id, "running").await;
    workers.stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!workers.handle.is_finished(), "returned with a job running");
    setup.store.fail_sets(false);
    workers.stop().await;
    assert_eq!(app.status(&id).await.json["status"], "complete");
    assert_eq!(app.wait_complete(&id).await, trial_division(100));
    if app.lag().is_some() {
        assert_eq!(app.lag(), Some(0), "the finished job was committed");
    }
}

/// At stop, a job that cannot finish within the drain time is left uncommitted, and the
/// next worker completes it.
pub async fn stop_abandons_a_stuck_job_for_redelivery(setup: Setup) {
    let app = App::new(&setup, |_, o| o.drain_timeout = Duration::from_millis(200)).await;
    let id = app.submit(100).await;
    setup.store.fail_sets(true);
    let workers = app.start_workers();
    app.wait_for(&id, "running").await;
    workers.stop().await;
    if app.lag().is_some() {
        assert_eq!(app.lag(), Some(1), "the abandoned job is not committed");
    }
    assert_eq!(app.status(&id).await.json["status"], "running");
    setup.store.fail_sets(false);
    let _workers = app.start_workers();
    assert_eq!(app.wait_complete(&id).await, trial_division(100));
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held");
}
