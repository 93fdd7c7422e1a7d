//! A measurement, not a check (hence ignored): prime jobs/s and todo writes/s with 1, 2 and
//! 4 `floodgate worker` processes behind one `serve --no-workers` node on the same Redis,
//! Tansu and PostgreSQL, and what each worker costs in CPU (utime+stime from /proc) per
//! 1,000 jobs or writes. Each worker count gets fresh topics (FLOODGATE_KAFKA_PARTITIONS,
//! default 8 partitions), consumer groups and database (tests/common/cluster.rs). It
//! asserts only that every job and write was done right and that every worker took a share.
//! Figures: docs/benchmarks.md, "Workers: 1, 2 and 4 on one broker". Run it against
//! `scripts/services` (after `. $FLOODGATE_SERVICES_DIR/env`):
//!
//!     cargo test --release --test scaling -- --ignored --nocapture

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{metric, warm_up, Cluster, Proc};
use serde_json::{json, Value};

const JOBS: usize = 10_000;
/// Every job computes the first N primes (a fixed size in the middle of the seed's 10..5000).
const N: usize = 2000;
/// Todo creates.
const WRITES: usize = 10_000;
/// Clients sending at once.
const CLIENTS: usize = 32;

/// One phase (jobs or writes) on one cluster.
struct Phase {
    /// First send to last accepted, and to last done.
    sent: Duration,
    done: Duration,
    /// CPU ms of each worker, of the API node, of this test (the clients), of everything
    /// else (broker, Redis, PostgreSQL, ...); the machine's busy share of both cores (%).
    cpu_ms: Vec<f64>,
    api_ms: f64,
    test_ms: f64,
    rest_ms: f64,
    busy: f64,
    /// Messages of the phase's topic each worker consumed.
    consumed: Vec<f64>,
    /// The phase's counter over all workers: jobs skipped as already done (redeliveries),
    /// or todo batches applied.
    counter: f64,
}

/// What the phase's figures are read from, at its start and end.
struct Sample {
    at: Instant,
    cpu_ms: Vec<f64>,
    machine: (f64, f64),
    consumed: Vec<f64>,
    counter: f64,
}

/// What jobs and writes phases read: their topic and `counter`'s metric and labels.
const JOBS_PHASE: [&str; 3] = [
    "PRIMES_TOPIC",
    "prime_jobs_completed_total",
    r#"result="skipped""#,
];
const WRITES_PHASE: [&str; 3] = ["KAFKA_TODO_TOPIC", "todos_batch_size_count", ""];

async fn sample(c: &Cluster, procs: &[&Proc], [topic, name, labels]: [&str; 3]) -> Sample {
    let (mut consumed, mut counter) = (Vec::new(), 0.0);
    for p in &procs[1..] {
        let label = format!("topic=\"{}\"", c.var(topic));
        consumed.push(metric(c, p, "bus_messages_consumed_total", &label).await);
        counter += metric(c, p, name, labels).await;
    }
    Sample {
        at: Instant::now(),
        cpu_ms: procs
            .iter()
            .map(|p| p.pid())
            .chain([std::process::id()])
            .map(cpu_ms)
            .collect(),
        machine: machine(),
        consumed,
        counter,
    }
}

fn phase(a: Sample, b: Sample, sent: Duration, done: Duration) -> Phase {
    let cpu: Vec<f64> = a.cpu_ms.iter().zip(&b.cpu_ms).map(|(a, b)| b - a).collect();
    let busy = b.machine.0 - a.machine.0;
    Phase {
        sent,
        done,
        cpu_ms: cpu[1..cpu.len() - 1].to_vec(),
        api_ms: cpu[0],
        test_ms: cpu[cpu.len() - 1],
        rest_ms: busy - cpu.iter().sum::<f64>(),
        busy: 100.0 * busy / (b.machine.1 - a.machine.1),
        consumed: a
            .consumed
            .iter()
            .zip(&b.consumed)
            .map(|(a, b)| b - a)
            .collect(),
        counter: b.counter - a.counter,
    }
}

/// utime + stime of `pid` in ms.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .expect("comm")
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks * 1000.0 / clock_tick()
}

fn clock_tick() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    text.ok().and_then(|t| t.parse().ok()).unwrap_or(100.0)
}

/// (busy, total) ms of all cores, from /proc/stat (user .. steal; guest is within user).
fn machine() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let f: Vec<f64> = stat
        .lines()
        .next()
        .expect("cpu line")
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().expect("jiffies"))
        .collect();
    let (total, ms) = (f.iter().sum::<f64>(), 1000.0 / clock_tick());
    ((total - f[3] - f[4]) * ms, total * ms)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Sends `count` requests made by `req` from CLIENTS clients at once, each retried until
/// answered `want` (503 while the node refuses); returns the `key` field of every answer.
async fn send_all(
    c: &Arc<Cluster>,
    base: &str,
    count: usize,
    req: fn(&Cluster, &str, usize) -> reqwest::RequestBuilder,
    (want, key): (u16, &'static str),
) -> Vec<String> {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (c, base) = (c.clone(), base.to_string());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in (k..count).step_by(CLIENTS) {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        if let Ok(r) = req(&c, &base, i).send().await {
                            if r.status().as_u16() == want {
                                let v: Value = r.json().await.expect("json");
                                ids.push(v[key].as_str().expect("id").to_string());
                                break;
                            }
                        }
                        assert!(Instant::now() < deadline, "request {i} never accepted");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                ids
            })
        })
        .collect();
    futures::future::join_all(clients)
        .await
        .into_iter()
        .flat_map(|ids| ids.expect("client"))
        .collect()
}

fn job(c: &Cluster, base: &str, _: usize) -> reqwest::RequestBuilder {
    c.http.post(format!("{base}/generate?n={N}"))
}

fn create(c: &Cluster, base: &str, i: usize) -> reqwest::RequestBuilder {
    let title = format!("scaling {i}");
    c.http
        .post(format!("{base}/todos"))
        .bearer_auth(c.token())
        .json(&json!({ "title": title }))
}

/// Polls `count` every 20 ms until it reaches `want` (panics after 5 minutes).
async fn until<F, Fut>(want: f64, mut count: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = f64>,
{
    let deadline = Instant::now() + Duration::from_secs(300);
    while count().await < want {
        assert!(Instant::now() < deadline, "never reached {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `count` once it has stopped changing for half a second (the warm-up's work is done).
async fn settled<F, Fut>(mut count: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = f64>,
{
    let mut last = count().await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = count().await;
        if now == last {
            return now;
        }
        last = now;
    }
}

async fn completed(c: &Cluster, workers: &[Proc]) -> f64 {
    let mut sum = 0.0;
    for w in workers {
        sum += metric(c, w, "prime_jobs_completed_total", "result=\"complete\"").await;
    }
    sum
}

async fn rows(db: &sqlx::PgPool) -> f64 {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM todos")
        .fetch_one(db)
        .await
        .expect("count");
    n as f64
}

/// One API node and `w` workers on a fresh cluster: the jobs phase, then the writes phase.
async fn measure(c: Cluster, w: usize) -> (Phase, Phase) {
    let (api, base) = c.api_node().await;
    let workers: Vec<Proc> = (1..=w)
        .map(|i| c.spawn(&format!("worker-{i}"), &["worker"]))
        .collect();
    let names = ["api", "worker-1", "worker-2", "worker-3", "worker-4"];
    let members: Vec<&Proc> = workers.iter().collect();
    warm_up(&c, &base, &members, &names).await;
    let procs: Vec<&Proc> = std::iter::once(&api).chain(&workers).collect();
    let c = Arc::new(c);

    // (a) prime jobs, done when the workers have completed JOBS more.
    let before = settled(|| completed(&c, &workers)).await;
    let start = sample(&c, &procs, JOBS_PHASE).await;
    let ids = send_all(&c, &base, JOBS, job, (200, "request_id")).await;
    let sent = start.at.elapsed();
    until(before + JOBS as f64, || completed(&c, &workers)).await;
    let done = start.at.elapsed();
    let jobs = phase(start, sample(&c, &procs, JOBS_PHASE).await, sent, done);
    for id in &ids {
        let v: Value = c
            .http
            .get(format!("{base}/status/{id}"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        assert_eq!(v["status"], "complete", "{id}: {v}");
        assert_eq!(v["result"].as_array().map(Vec::len), Some(N), "{id}");
    }

    // (b) todo creates, done when the rows are in PostgreSQL.
    let db = sqlx::PgPool::connect(c.var("DATABASE_URL"))
        .await
        .expect("db");
    let before = settled(|| rows(&db)).await;
    let start = sample(&c, &procs, WRITES_PHASE).await;
    let ids = send_all(&c, &base, WRITES, create, (202, "id")).await;
    let sent = start.at.elapsed();
    until(before + WRITES as f64, || rows(&db)).await;
    let done = start.at.elapsed();
    let end = sample(&c, &procs, WRITES_PHASE).await;
    let writes = phase(start, end, sent, done);
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM todos WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(found as usize, WRITES, "todos missing from the database");

    for name in names.iter().take(w + 1) {
        let log = c.log(name);
        let odd: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("claims lost"))
            .collect();
        if let Some(last) = odd.last() {
            println!(
                "{w} workers, {name}: {} warnings or errors, the last: {last}",
                odd.len()
            );
        }
    }
    for (p, k) in jobs.consumed.iter().zip(&writes.consumed) {
        assert!(
            *p > 0.0 && *k > 0.0,
            "a worker got no work\n{}",
            c.logs(&names)
        );
    }
    (jobs, writes)
}

fn row(w: usize, count: usize, p: &Phase) -> String {
    let per_k = |ms: f64| ms * 1000.0 / count as f64;
    let each: Vec<String> = p
        .cpu_ms
        .iter()
        .map(|&ms| format!("{:.0}", per_k(ms)))
        .collect();
    let total: f64 = p.cpu_ms.iter().sum();
    let share: Vec<String> = p.consumed.iter().map(|n| format!("{n:.0}")).collect();
    format!(
        "| {w} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} % | {} |",
        count as f64 / p.done.as_secs_f64(),
        count as f64 / p.sent.as_secs_f64(),
        each.join(" / "),
        per_k(total),
        per_k(p.api_ms),
        per_k(p.test_ms),
        per_k(p.rest_ms),
        p.busy,
        share.join(" / "),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --release --test scaling -- --ignored --nocapture"]
async fn jobs_and_writes_per_second_with_1_2_and_4_workers() {
    let load_before = load();
    let mut results = Vec::new();
    for w in [1, 2, 4] {
        let Some(c) = Cluster::new().await else {
            return;
        };
        results.push((w, measure(c, w).await));
    }
    println!("\n{JOBS} prime jobs (n={N}), then {WRITES} todo creates, from {CLIENTS} clients; CPU in ms per 1,000");
    let head = "| workers | {what}/s | accepted/s | each worker | workers | API node | test clients | rest (broker, Redis, PostgreSQL) | machine busy | consumed by each worker |\n|---|---|---|---|---|---|---|---|---|---|";
    for (what, count) in [("jobs", JOBS), ("writes", WRITES)] {
        println!("\n{}", head.replace("{what}", what));
        for (w, (jobs, writes)) in &results {
            println!(
                "{}",
                row(*w, count, if what == "jobs" { jobs } else { writes })
            );
        }
    }
    for (w, (jobs, writes)) in &results {
        println!(
            "{w} workers: {:.0} jobs skipped as already done; {:.0} todo batches, {:.1} writes each",
            jobs.counter,
            writes.counter,
            WRITES as f64 / writes.counter
        );
    }
    println!("\nload average before: {load_before}; after: {}", load());
}
