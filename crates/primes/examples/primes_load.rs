//! Load test modelled on the seed's Locust file: simulated users submit a job (small 10-50,
//! medium 100-500 or large 1000-5000 primes), poll its status until complete, check the
//! result, and start over. Prints jobs/s and submit-to-complete latency percentiles.
//!
//!     cargo run --release -p floodgate-primes --example primes_load -- [--url http://host:8080]
//!         [--users 100] [--seconds 20] [--poll-ms 5] [--redis URL] [--kafka BROKERS]
//!
//! Without --url it starts a node (HTTP and workers) in-process, on the memory store and
//! bus unless --redis / --kafka are given; client and server then share the cores.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floodgate_core::{AppContext, Backends, Config};
use rand::{Rng, SeedableRng};
use serde::Deserialize;

#[derive(Debug, Clone)]
struct Args {
    url: Option<String>,
    redis: Option<String>,
    kafka: Option<String>,
    users: usize,
    seconds: u64,
    poll: Duration,
}

fn args() -> Args {
    let mut a = Args {
        url: None,
        redis: None,
        kafka: None,
        users: 100,
        seconds: 20,
        poll: Duration::from_millis(5),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => a.url = Some(value.trim_end_matches('/').to_string()),
            "--redis" => a.redis = Some(value),
            "--kafka" => a.kafka = Some(value),
            "--users" => a.users = value.parse().expect("--users N"),
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--poll-ms" => a.poll = Duration::from_millis(value.parse().expect("--poll-ms N")),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

#[derive(Deserialize)]
struct Submitted {
    request_id: String,
}

#[derive(Deserialize)]
struct Status {
    status: String,
    result: Option<Vec<u64>>,
}

#[derive(Default)]
struct Counters {
    submit_errors: AtomicU64,
    rejected_503: AtomicU64,
    poll_errors: AtomicU64,
    wrong: AtomicU64,
    polls: AtomicU64,
}

/// The seed's three user tasks, weighted small 3 : medium 2 : large 1.
fn pick_n(rng: &mut impl Rng) -> u64 {
    match rng.random_range(0..6) {
        0..=2 => rng.random_range(10..=50),
        3..=4 => rng.random_range(100..=500),
        _ => rng.random_range(1000..=5000),
    }
}

async fn local_node(args: &Args) -> String {
    let mut config = Config::defaults();
    config.redis_url = args.redis.clone();
    config.kafka_brokers = args.kafka.clone();
    let backends = Backends::connect(&config).await.expect("backends");
    let dir = std::env::temp_dir().join(format!("floodgate-load-{}", std::process::id()));
    let db = floodgate_db::Db::connect(Some(&format!("sqlite://{}/db.sqlite", dir.display())))
        .await
        .expect("temp sqlite");
    let ctx = AppContext::new(config, Backends { db, ..backends });
    let app = floodgate_primes::router(&ctx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    tokio::spawn(floodgate_primes::run_workers(ctx, Default::default()));
    format!("http://{addr}")
}

/// One user: submit, poll until complete, check; returns submit-to-complete latencies.
async fn user(
    client: reqwest::Client,
    base: Arc<str>,
    poll: Duration,
    reference: Arc<Vec<u64>>,
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
) -> Vec<Duration> {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut done = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = pick_n(&mut rng);
        let started = Instant::now();
        let resp = client.post(format!("{base}/generate?n={n}")).send().await;
        let id = match resp {
            Ok(r) if r.status() == 503 => {
                c.rejected_503.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Ok(r) if r.status().is_success() => match r.json::<Submitted>().await {
                Ok(s) => s.request_id,
                Err(_) => {
                    c.submit_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            },
            _ => {
                c.submit_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        loop {
            c.polls.fetch_add(1, Ordering::Relaxed);
            let status = match client.get(format!("{base}/status/{id}")).send().await {
                Ok(r) if r.status().is_success() => r.json::<Status>().await.ok(),
                _ => None,
            };
            match status {
                Some(s) if s.status == "complete" => {
                    let ok = s.result.as_deref() == Some(&reference[..n as usize]);
                    if ok {
                        done.push(started.elapsed());
                    } else {
                        c.wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                Some(s) if s.status == "pending" || s.status == "running" => {}
                _ => {
                    c.poll_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            tokio::time::sleep(poll).await;
        }
    }
    done
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args = args();
    let base: Arc<str> = match &args.url {
        Some(u) => u.as_str().into(),
        None => local_node(&args).await.into(),
    };
    let reference = Arc::new(floodgate_primes::first_primes(5000));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.users)
        .build()
        .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    println!(
        "{} users for {} s against {base} (poll every {:?})",
        args.users, args.seconds, args.poll
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.users)
        .map(|_| {
            tokio::spawn(user(
                client.clone(),
                base.clone(),
                args.poll,
                reference.clone(),
                stop.clone(),
                counters.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let c = &counters;
    let jobs = latencies.len();
    println!(
        "completed jobs:   {jobs} ({:.0} jobs/s)",
        jobs as f64 / elapsed
    );
    println!(
        "submit→complete:  p50 {:?}  p99 {:?}  max {:?}",
        pct(&latencies, 0.50),
        pct(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!(
        "status polls:     {} ({:.1} per job)",
        c.polls.load(Ordering::Relaxed),
        c.polls.load(Ordering::Relaxed) as f64 / jobs.max(1) as f64
    );
    println!(
        "errors:           submit {}  503 {}  poll {}  wrong result {}",
        c.submit_errors.load(Ordering::Relaxed),
        c.rejected_503.load(Ordering::Relaxed),
        c.poll_errors.load(Ordering::Relaxed),
        c.wrong.load(Ordering::Relaxed)
    );
}
