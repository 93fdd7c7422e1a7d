//! Primes: submit jobs of the seed's three sizes, poll each until complete, and check the
//! result is the first n primes (length, first and last, ascending).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{clients, each, latency_line, send_retrying, ScenarioReport, Text};
use crate::args::BenchArgs;
use crate::client::Client;
use crate::error::BenchError;
use crate::request::Rng;

const DEFAULT_JOBS: u64 = 30;
/// The seed's Locust sizes: small, medium, large.
const SIZES: [(i64, i64); 3] = [(10, 50), (100, 500), (1000, 5000)];
/// How long a job may take from submission to completion.
const JOB_DEADLINE: Duration = Duration::from_secs(60);

enum Outcome {
    Done(Duration),
    Wrong(String),
}

pub async fn run(args: &BenchArgs) -> Result<ScenarioReport, BenchError> {
    let jobs = args.requests.unwrap_or(DEFAULT_JOBS);
    let concurrency = args.connections.min(jobs as usize).max(1);
    let primes = first_primes(SIZES[2].1 as usize);
    let mut clients = clients(args, concurrency).await?;
    let outcomes = each(&mut clients, jobs, async |client: &mut Client, item| {
        let (low, high) = SIZES[(item % 3) as usize];
        let n = Rng::seeded().range(low, high) as usize;
        match job(client, n, args.retries).await {
            Ok((result, took)) => match check(&result, n, &primes) {
                None => Outcome::Done(took),
                Some(why) => Outcome::Wrong(format!("n={n}: {why}")),
            },
            Err(why) => Outcome::Wrong(format!("n={n}: {why}")),
        }
    })
    .await;

    let mut took = Vec::new();
    let mut wrong = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Done(d) => took.push(d),
            Outcome::Wrong(why) => wrong.push(why),
        }
    }
    let mut text = Text::new(
        "primes",
        format_args!("{jobs} jobs at concurrency {concurrency}"),
    );
    let (correct, failed) = (took.len(), wrong.len());
    text.line("jobs", format_args!("{correct} correct, {failed} failed"));
    text.push(&latency_line(took).replacen("latency ", "completion", 1));
    for why in wrong.iter().take(5) {
        text.line("failed", format_args!("{why}"));
    }
    Ok(text.report(wrong.is_empty(), serde_json::json!({"scenario": "primes"})))
}

/// Submits one job and polls until it completes; returns the result and the time taken.
async fn job(
    client: &mut Client,
    n: usize,
    attempts: u32,
) -> Result<(Vec<Value>, Duration), String> {
    let started = Instant::now();
    let path = format!("/generate?n={n}");
    let reply = send_retrying(client, ("POST", &path), &[], b"", attempts)
        .await
        .map_err(|e| format!("submit: {}", e.0))?;
    if reply.status != 200 {
        return Err(format!("submit: status {}", reply.status));
    }
    let id = reply
        .json()
        .and_then(|v| v.get("request_id")?.as_str().map(str::to_string))
        .ok_or("submit: no request_id")?;
    let status_path = format!("/status/{id}");
    let mut wait = Duration::from_millis(20);
    loop {
        if started.elapsed() > JOB_DEADLINE {
            return Err(format!("not complete after {}s", JOB_DEADLINE.as_secs()));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(500));
        let reply = send_retrying(client, ("GET", &status_path), &[], b"", attempts)
            .await
            .map_err(|e| format!("status: {}", e.0))?;
        if reply.status != 200 {
            return Err(format!("status: status {}", reply.status));
        }
        let body = reply.json().ok_or("status: not JSON")?;
        match body.get("status").and_then(Value::as_str) {
            Some("complete") => {
                let result = body
                    .get("result")
                    .and_then(Value::as_array)
                    .ok_or("no result array")?;
                return Ok((result.clone(), started.elapsed()));
            }
            // Still queued, or a worker has it: keep polling.
            Some("pending") | Some("running") => {}
            Some(other) => return Err(format!("job {other}")),
            None => return Err("status: no status field".into()),
        }
    }
}

/// Why `result` is not the first `n` primes, if it is not.
fn check(result: &[Value], n: usize, primes: &[u64]) -> Option<String> {
    if result.len() != n {
        return Some(format!("{} numbers instead of {n}", result.len()));
    }
    let numbers: Option<Vec<u64>> = result.iter().map(Value::as_u64).collect();
    let Some(numbers) = numbers else {
        return Some("result holds something other than integers".into());
    };
    if numbers.windows(2).any(|w| w[0] >= w[1]) {
        return Some("result is not strictly ascending".into());
    }
    let (first, last) = (numbers.first()?, numbers.last()?);
    let want_last = primes.get(n - 1)?;
    if *first != 2 || last != want_last {
        return Some(format!("first/last {first}/{last}, expected 2/{want_last}"));
    }
    None
}

/// The first `count` primes, by a sieve sized from the prime number theorem.
fn first_primes(count: usize) -> Vec<u64> {
    let n = count.max(6) as f64;
    let limit = (n * (n.ln() + n.ln().ln())) as usize + 10;
    let mut composite = vec![false; limit + 1];
    let mut primes = Vec::with_capacity(count);
    for i in 2..=limit {
        if composite[i] {
            continue;
        }
        primes.push(i as u64);
        if primes.len() == count {
            break;
        }
        for multiple in (i * i..=limit).step_by(i) {
            composite[multiple] = true;
        }
    }
    primes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sieve_and_check() {
        let primes = first_primes(5000);
        assert_eq!(primes.len(), 5000);
        assert_eq!(primes[..5], [2, 3, 5, 7, 11]);
        assert_eq!(primes[4999], 48611);
        let ok: Vec<Value> = primes[..10].iter().map(|&p| Value::from(p)).collect();
        assert_eq!(check(&ok, 10, &primes), None);
        assert!(check(&ok, 11, &primes).is_some());
        let mut bad = ok.clone();
        bad[9] = Value::from(31);
        assert!(check(&bad, 10, &primes).is_some());
    }
}
