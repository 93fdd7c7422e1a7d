//! Abacus: add random numbers with idempotency keys, then check the sum moved by exactly
//! what was acknowledged. Needs the sum to itself while it runs.

use std::time::{Duration, Instant};

use super::{clients, each, latency_line, send_retrying, status_line, ScenarioReport, Text};
use crate::args::BenchArgs;
use crate::client::Client;
use crate::error::BenchError;
use crate::request::Rng;

const DEFAULT_REQUESTS: u64 = 100;

enum Outcome {
    /// Acknowledged with 200: the number was added.
    Added(i64, Duration),
    /// Refused with a 4xx: nothing was added.
    Refused(u16),
    /// No definitive answer after every retry: it may or may not have been added.
    Unknown(i64, String),
}

pub async fn run(args: &BenchArgs) -> Result<ScenarioReport, BenchError> {
    let count = args.requests.unwrap_or(DEFAULT_REQUESTS);
    let concurrency = args.connections.min(count as usize).max(1);
    // ABACUS_API_KEYS may list several keys: the first one will do.
    let key = args
        .api_key
        .as_deref()
        .and_then(|k| k.split(',').map(str::trim).find(|k| !k.is_empty()))
        .ok_or_else(|| {
            BenchError::Option(
                "--api-key is required (no ABACUS_API_KEYS, no data/dev-secrets.env)".into(),
            )
        })?;
    let mut clients = clients(args, concurrency).await?;
    let Some(first) = clients.first_mut() else {
        return Err(BenchError::Option("no base URL".into()));
    };
    let initial = read_sum(first, key, args.retries).await?;

    let started = Instant::now();
    let outcomes = each(&mut clients, count, async |client: &mut Client, _| {
        let mut rng = Rng::seeded();
        let number = rng.range(-1000, 1000);
        let idempotency = uuid::Uuid::new_v4().to_string();
        let headers = [
            ("X-API-Key", key),
            ("Idempotency-Key", idempotency.as_str()),
            ("Content-Type", "application/json"),
        ];
        let body = format!("{{\"number\":{number}}}");
        let sent = Instant::now();
        let request = ("POST", "/abacus/number");
        match send_retrying(client, request, &headers, body.as_bytes(), args.retries).await {
            Ok(reply) if reply.status == 200 => Outcome::Added(number, sent.elapsed()),
            Ok(reply) => Outcome::Refused(reply.status),
            Err(unanswered) => Outcome::Unknown(number, unanswered.0),
        }
    })
    .await;
    let elapsed = started.elapsed();

    let Some(first) = clients.first_mut() else {
        return Err(BenchError::Option("no base URL".into()));
    };
    let last = read_sum(first, key, args.retries).await?;
    let mut sent: i128 = 0;
    let mut latencies = Vec::new();
    let mut refused = Vec::new();
    let mut unknown = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Added(number, latency) => {
                sent += i128::from(number);
                latencies.push(latency);
            }
            Outcome::Refused(status) => refused.push(status),
            Outcome::Unknown(number, why) => unknown.push((number, why)),
        }
    }
    let expected = i128::from(initial) + sent;
    let mut text = Text::new(
        "abacus",
        format_args!("{count} POSTs at concurrency {concurrency}"),
    );
    text.line(
        "requests",
        format_args!(
            "{} added, {} refused ({}), {} unanswered, {:.1} req/s",
            latencies.len(),
            refused.len(),
            status_line(refused.iter().copied()),
            unknown.len(),
            latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9)
        ),
    );
    text.push(&latency_line(latencies));
    text.line(
        "sum",
        format_args!("initial {initial}, sent {sent}, expected {expected}, final {last}"),
    );
    for (number, why) in unknown.iter().take(5) {
        text.line("unanswered", format_args!("number {number}: {why}"));
    }
    let sum_ok = i128::from(last) == expected;
    if !sum_ok {
        let off = i128::from(last) - expected;
        text.line("check", format_args!("the final sum is off by {off}"));
    }
    let passed = sum_ok && refused.is_empty() && unknown.is_empty();
    Ok(text.report(passed, serde_json::json!({"scenario": "abacus"})))
}

async fn read_sum(client: &mut Client, key: &str, attempts: u32) -> Result<i64, BenchError> {
    let url = client.url("/abacus/sum");
    let failed = |why: String| BenchError::Request {
        url: url.clone(),
        why,
    };
    let reply = send_retrying(
        client,
        ("GET", "/abacus/sum"),
        &[("X-API-Key", key)],
        b"",
        attempts,
    )
    .await
    .map_err(|e| failed(e.0))?;
    if reply.status != 200 {
        return Err(failed(format!("status {}", reply.status)));
    }
    reply
        .json()
        .and_then(|v| v.get("current_sum")?.as_i64())
        .ok_or_else(|| failed("no integer current_sum in the response".into()))
}
