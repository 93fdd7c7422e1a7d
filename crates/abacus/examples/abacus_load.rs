//! Abacus load check: POSTs N numbers with Idempotency-Keys at concurrency C, round-robin
//! over one or more node URLs, retrying 5xx and transport errors with the same key (on the
//! next URL), then checks the sum moved by exactly what was sent. Prints requests/s.
//!
//!   cargo run --release -p floodgate-abacus --example abacus_load -- \
//!       -n 10000 -c 100 -k "$KEY" http://127.0.0.1:8080 [http://127.0.0.1:8081 ...]
//!
//! `-k` defaults to the first of $ABACUS_API_KEYS (`set -a; . data/dev-secrets.env` exports it for a
//! zero-setup node).
//!
//! Nothing else may write the sum during the run. With the default rate limit (600 per
//! minute per key) most requests wait on 429s: raise ABACUS_RATE_LIMIT_REQUESTS or set
//! ABACUS_RATE_LIMIT_ENABLED=false on the servers first.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    requests: u64,
    concurrency: u64,
    api_key: String,
    urls: Vec<String>,
}

const USAGE: &str = "usage: load [-n REQUESTS] [-c CONCURRENCY] [-k API_KEY] URL [URL...]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        requests: 10_000,
        concurrency: 100,
        api_key: std::env::var("ABACUS_API_KEYS")
            .unwrap_or_default()
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        urls: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-n" => args.requests = value("-n")?.parse().map_err(|e| format!("-n: {e}"))?,
            "-c" => args.concurrency = value("-c")?.parse().map_err(|e| format!("-c: {e}"))?,
            "-k" => args.api_key = value("-k")?,
            "-h" | "--help" => return Err(USAGE.into()),
            url => args.urls.push(url.trim_end_matches('/').to_string()),
        }
    }
    if args.urls.is_empty() || args.concurrency == 0 || args.api_key.is_empty() {
        return Err(USAGE.into());
    }
    Ok(args)
}

/// The number sent by request `i`: mixed signs and sizes, reproducible.
fn number(i: u64) -> i64 {
    let x = i64::try_from(i.wrapping_mul(2_654_435_761) % 2_000_001).unwrap_or(0);
    x - 1_000_000
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    replayed: AtomicU64,
    limited: AtomicU64,
    unavailable: AtomicU64,
    transport: AtomicU64,
}

async fn current_sum(client: &reqwest::Client, url: &str, key: &str) -> Result<i64, String> {
    let resp = client
        .get(format!("{url}/abacus/sum"))
        .header("x-api-key", key)
        .send()
        .await
        .map_err(|e| format!("GET {url}/abacus/sum: {e}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| format!("GET {url}/abacus/sum: {e}"))?;
    body["current_sum"]
        .as_i64()
        .ok_or(format!("GET {url}/abacus/sum: {status} {body}"))
}

/// Sends request `i` until it is answered 200 (a replay counts: it was applied once).
async fn send_one(client: &reqwest::Client, args: &Args, run: &str, i: u64, counts: &Counts) {
    let key = format!("{run}-{i}");
    let body = format!(r#"{{"number":{}}}"#, number(i));
    let mut turn = i as usize;
    loop {
        let url = &args.urls[turn % args.urls.len()];
        let sent = client
            .post(format!("{url}/abacus/number"))
            .header("x-api-key", &args.api_key)
            .header("idempotency-key", &key)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let wait = match sent {
            Ok(r) if r.status() == 200 => {
                let counter = if r.headers().contains_key("idempotent-replayed") {
                    &counts.replayed
                } else {
                    &counts.ok
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(r) if r.status() == 429 => {
                counts.limited.fetch_add(1, Ordering::Relaxed);
                let secs = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Duration::from_secs(secs)
            }
            Ok(r) if r.status().is_server_error() => {
                counts.unavailable.fetch_add(1, Ordering::Relaxed);
                Duration::from_millis(100)
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                eprintln!("request {i}: unexpected {status}: {text}");
                std::process::exit(1);
            }
            Err(_) => {
                counts.transport.fetch_add(1, Ordering::Relaxed);
                Duration::from_millis(100)
            }
        };
        turn += 1;
        tokio::time::sleep(wait).await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("http client: {e}");
            return ExitCode::from(1);
        }
    };
    let before = match current_sum(&client, &args.urls[0], &args.api_key).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let run = uuid::Uuid::new_v4().to_string();
    let next = Arc::new(AtomicU64::new(0));
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, args, run) = (client.clone(), args.clone(), run.clone());
            let (next, counts) = (next.clone(), counts.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.requests {
                        return;
                    }
                    send_one(&client, &args, &run, i, &counts).await;
                }
            })
        })
        .collect();
    for w in workers {
        if let Err(e) = w.await {
            eprintln!("worker failed: {e}");
            return ExitCode::from(1);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let sent: i64 = (0..args.requests).map(number).sum();
    let after = match current_sum(&client, &args.urls[0], &args.api_key).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let attempts = get(&counts.ok)
        + get(&counts.replayed)
        + get(&counts.limited)
        + get(&counts.unavailable)
        + get(&counts.transport);
    println!(
        "{} numbers in {elapsed:.2}s over {} node(s) at concurrency {}: {:.0} requests/s ({attempts} attempts)",
        args.requests,
        args.urls.len(),
        args.concurrency,
        args.requests as f64 / elapsed
    );
    println!(
        "200: {} (+{} replayed), 429: {}, 5xx: {}, transport errors: {}",
        get(&counts.ok),
        get(&counts.replayed),
        get(&counts.limited),
        get(&counts.unavailable),
        get(&counts.transport)
    );
    match before.checked_add(sent) {
        Some(expected) if expected == after => {
            println!("sum OK: {before} + {sent} = {after}");
            ExitCode::SUCCESS
        }
        expected => {
            println!("sum MISMATCH: {before} + {sent} = {expected:?}, server says {after}");
            ExitCode::from(1)
        }
    }
}
