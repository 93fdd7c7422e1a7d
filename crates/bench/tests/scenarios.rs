//! Scenarios against fake services: a correct fake passes, a faulty one is caught.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use common::{args, serve, Reply};
use floodgate_bench::Scenario;

async fn scenario(list: &[&str]) -> floodgate_bench::ScenarioReport {
    run(args(list)).await
}

async fn run(args: floodgate_bench::BenchArgs) -> floodgate_bench::ScenarioReport {
    let name = args.scenario.unwrap();
    floodgate_bench::run_scenario(name, &args).await.unwrap()
}

/// The abacus scenario with API key `key` and `posts` POSTs (then `more`) against `url`.
fn abacus_args(key: &str, posts: &str, more: &[&str], url: &str) -> floodgate_bench::BenchArgs {
    let mut list = vec!["--scenario", "abacus", "--api-key", key, "-n", posts];
    list.extend_from_slice(more);
    list.push(url);
    args(&list)
}

/// A fake abacus. `drop_nth` acknowledges that POST without adding it; `flaky` answers 503
/// to the first attempt of every 4th key (after applying it, so a retry must not add twice).
fn abacus(drop_nth: Option<u64>, flaky: bool) -> impl Fn(&common::Request) -> Reply + Send + Sync {
    struct State {
        sum: i64,
        posts: u64,
        seen: HashMap<String, String>,
        failed_once: HashSet<String>,
    }
    let state = Arc::new(Mutex::new(State {
        sum: 1000,
        posts: 0,
        seen: HashMap::new(),
        failed_once: HashSet::new(),
    }));
    move |r| {
        let mut s = state.lock().unwrap();
        if r.header("X-API-Key") != Some("secret") {
            return Reply::status(401, "{\"detail\":\"Missing API key.\"}");
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/abacus/sum") => Reply::ok(format!("{{\"current_sum\":{}}}", s.sum)),
            ("POST", "/abacus/number") => {
                let key = r.header("Idempotency-Key").unwrap_or("").to_string();
                if let Some(stored) = s.seen.get(&key) {
                    return Reply::ok(stored.clone());
                }
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                let number = body["number"].as_i64().unwrap();
                s.posts += 1;
                if drop_nth != Some(s.posts) {
                    s.sum += number;
                }
                let reply = format!(
                    "{{\"message\":\"Number added successfully.\",\"current_sum\":{}}}",
                    s.sum
                );
                s.seen.insert(key.clone(), reply.clone());
                if flaky && s.posts.is_multiple_of(4) && s.failed_once.insert(key) {
                    return Reply::status(503, "{}");
                }
                Reply::ok(reply)
            }
            _ => Reply::status(404, "{}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abacus_passes_against_a_correct_service_with_retries() {
    let server = serve(abacus(None, true)).await;
    let report = run(abacus_args("secret", "40", &["-c", "4"], &server.url)).await;
    assert!(report.passed, "{}", report.text);
    // 40 POSTs, 10 of them retried, plus two sum reads.
    assert_eq!(server.count(), 52);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abacus_catches_a_dropped_increment() {
    // Find a run where the dropped number is not 0 (a 0 would not move the sum).
    for _ in 0..5 {
        let server = serve(abacus(Some(7), false)).await;
        let report = run(abacus_args("secret", "20", &["-c", "2"], &server.url)).await;
        if report.passed {
            continue;
        }
        assert!(report.text.contains("off by"), "{}", report.text);
        return;
    }
    panic!("a dropped increment went unnoticed five times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abacus_fails_when_refused() {
    let server = serve(abacus(None, false)).await;
    let args = abacus_args("wrong", "5", &[], &server.url);
    let error = floodgate_bench::run_scenario(Scenario::Abacus, &args)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("status 401"), "{error}");
}

fn giftcodes(
    duplicate_every: Option<u64>,
    busy_every: Option<u64>,
) -> impl Fn(&common::Request) -> Reply + Send + Sync {
    move |r| {
        if busy_every.is_some_and(|n| r.index.is_multiple_of(n)) {
            return Reply::status(429, "{\"detail\":\"Server busy\"}");
        }
        let code = match duplicate_every {
            Some(n) if r.index.is_multiple_of(n) => "GIFT-SAME".to_string(),
            _ => format!("GIFT-{}", uuid::Uuid::new_v4()),
        };
        Reply::ok(format!("{{\"gift_code\":\"{code}\",\"request_id\":\"x\"}}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giftcodes_checks_uniqueness_and_success_rate() {
    let good = serve(giftcodes(None, None)).await;
    let report = scenario(&["--scenario", "giftcodes", "--users", "200", &good.url]).await;
    assert!(report.passed, "{}", report.text);
    assert_eq!(good.count(), 200);

    let duplicates = serve(giftcodes(Some(50), None)).await;
    let report = scenario(&["--scenario", "giftcodes", "--users", "200", &duplicates.url]).await;
    assert!(!report.passed, "{}", report.text);
    assert!(report.text.contains("3 duplicates"), "{}", report.text);

    let busy = serve(giftcodes(None, Some(10))).await;
    let report = scenario(&["--scenario", "giftcodes", "--users", "100", &busy.url]).await;
    assert!(!report.passed, "{}", report.text);
    assert!(report.text.contains("90.00%"), "{}", report.text);
    assert_eq!(report.stats["success_rate"], 90.0);
    assert_eq!(report.stats["total_requests"], 100);
    for field in ["timestamp", "concurrency", "total_time_seconds", "rps"] {
        assert!(
            !report.stats[field].is_null(),
            "{field} missing: {}",
            report.stats
        );
    }
}

fn primes(wrong: bool) -> impl Fn(&common::Request) -> Reply + Send + Sync {
    let jobs = Arc::new(Mutex::new(HashMap::<String, (usize, u32)>::new()));
    move |r| {
        let mut jobs = jobs.lock().unwrap();
        if let Some(query) = r.path.strip_prefix("/generate?n=") {
            let n: usize = query.parse().unwrap();
            let id = uuid::Uuid::new_v4().to_string();
            jobs.insert(id.clone(), (n, 0));
            return Reply::ok(format!("{{\"request_id\":\"{id}\"}}"));
        }
        let Some(id) = r.path.strip_prefix("/status/") else {
            return Reply::status(404, "{}");
        };
        let Some(job) = jobs.get_mut(id) else {
            return Reply::status(404, "{}");
        };
        job.1 += 1;
        // Like the real service: queued, then taken by a worker, then complete.
        if job.1 < 2 {
            return Reply::ok("{\"status\":\"pending\",\"result\":null}");
        }
        if job.1 < 3 {
            return Reply::ok("{\"status\":\"running\",\"result\":null}");
        }
        let mut found = Vec::new();
        let mut candidate = 2u64;
        while found.len() < job.0 {
            if (2..candidate)
                .take_while(|d| d * d <= candidate)
                .all(|d| !candidate.is_multiple_of(d))
            {
                found.push(candidate);
            }
            candidate += 1;
        }
        if wrong {
            found.pop();
        }
        Reply::ok(serde_json::json!({"status": "complete", "result": found}).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primes_submits_polls_and_checks() {
    let good = serve(primes(false)).await;
    let report = scenario(&["--scenario", "primes", "-n", "6", "-c", "3", &good.url]).await;
    assert!(report.passed, "{}", report.text);
    assert!(report.text.contains("6 correct"), "{}", report.text);

    let bad = serve(primes(true)).await;
    let report = scenario(&["--scenario", "primes", "-n", "3", "-c", "3", &bad.url]).await;
    assert!(!report.passed, "{}", report.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todos_mixes_reads_and_authenticated_writes() {
    let writes = Arc::new(Mutex::new(0u64));
    let counted = writes.clone();
    let server = serve(move |r| match r.method.as_str() {
        "GET" if r.path == "/todos?limit=10" => Reply::ok("[]"),
        "POST" if r.header("Authorization") == Some("Bearer tok") => {
            *counted.lock().unwrap() += 1;
            Reply::status(202, "{\"id\":\"1\",\"message\":\"Todo creation queued\"}")
        }
        "POST" => Reply::status(401, "{\"error\":\"Unauthorized\"}"),
        _ => Reply::status(404, "{}"),
    })
    .await;
    let report = scenario(&[
        "--scenario",
        "todos",
        "--token",
        "tok",
        "--write-ratio",
        "0.5",
        "-n",
        "100",
        &server.url,
    ])
    .await;
    assert!(report.passed, "{}", report.text);
    let writes = *writes.lock().unwrap();
    assert!(
        (20..=80).contains(&writes),
        "{writes} writes of 100 at ratio 0.5"
    );

    let report = scenario(&[
        "--scenario",
        "todos",
        "--token",
        "bad",
        "--write-ratio",
        "1",
        "-n",
        "5",
        &server.url,
    ])
    .await;
    assert!(!report.passed, "{}", report.text);
}
