//! `floodgate worker` is visible to monitoring: prime jobs accepted by an API-only node and
//! run by a worker-only process show up in the worker's own /metrics, on
//! FLOODGATE_WORKER_LISTEN. Needs FLOODGATE_TEST_{REDIS_URL,KAFKA_BROKERS} (the two
//! processes share the store and the bus).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{binary, free_port, get_text, send_json, until_status, TempDir};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// The sum of every `prime_task_duration_milliseconds_count` sample in `text`.
fn task_count(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("prime_task_duration_milliseconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_only_process_serves_its_prime_task_metrics() {
    let Some(redis) = floodgate_testkit::env_or_skip("FLOODGATE_TEST_REDIS_URL") else {
        return;
    };
    let Some(brokers) = floodgate_testkit::env_or_skip("FLOODGATE_TEST_KAFKA_BROKERS") else {
        return;
    };
    let dir = TempDir::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (api_port, worker_port) = (free_port(), free_port());
    let spawn = |args: &[&str]| {
        let mut cmd = binary();
        cmd.current_dir(dir.path())
            .args(args)
            .args(["--redis-url", &redis, "--kafka-brokers", &brokers])
            // A topic (and so a consumer group) of this run alone.
            .args(["--set", &format!("PRIMES_TOPIC=worker-metrics-{run}")])
            .env("FLOODGATE_LOG_FORMAT", "text")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Proc(cmd.spawn().expect("spawn floodgate"))
    };
    let _api = spawn(&[
        "serve",
        "--no-workers",
        "--listen",
        &format!("127.0.0.1:{api_port}"),
    ]);
    // The worker's address comes from its own setting, not FLOODGATE_LISTEN (which the API
    // node holds).
    let worker_addr = format!("127.0.0.1:{worker_port}");
    let _worker = spawn(&[
        "worker",
        "--set",
        &format!("FLOODGATE_WORKER_LISTEN={worker_addr}"),
        "--set",
        &format!("FLOODGATE_LISTEN=127.0.0.1:{api_port}"),
    ]);
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{api_port}");
    let worker = format!("http://{worker_addr}");
    let patience = Duration::from_secs(60);
    assert!(until_status(&http, &format!("{api}/ready"), 200, patience).await);
    assert!(until_status(&http, &format!("{worker}/ready"), 200, patience).await);
    assert!(until_status(&http, &format!("{worker}/health"), 200, patience).await);

    const JOBS: u64 = 5;
    let mut ids = Vec::new();
    for n in 0..JOBS {
        let r = send_json(http.post(format!("{api}/generate?n={}", 100 + n))).await;
        ids.push(r["request_id"].as_str().expect("request_id").to_string());
    }
    for id in &ids {
        let done = common::eventually(patience, || async {
            let r: serde_json::Value = match http.get(format!("{api}/status/{id}")).send().await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => return false,
            };
            r["status"] == "complete"
        })
        .await;
        assert!(done, "job {id} never completed");
    }
    let text = get_text(&http, &format!("{worker}/metrics")).await;
    assert!(
        task_count(&text) >= JOBS,
        "worker /metrics lacks the jobs it ran:\n{text}"
    );
    // The API node ran none of them.
    let api_text = get_text(&http, &format!("{api}/metrics")).await;
    assert_eq!(task_count(&api_text), 0, "{api_text}");
}
