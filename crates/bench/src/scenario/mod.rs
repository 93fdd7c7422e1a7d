//! Scenarios: small user models with correctness checks. They use the plain client at low
//! concurrency; the verdict matters, not the request rate.

mod abacus;
mod giftcodes;
mod primes;
mod todos;

use std::cell::Cell;
use std::fmt::Write as _;
use std::time::Duration;

use crate::args::{BenchArgs, Scenario};
use crate::client::{Client, Reply};
use crate::error::BenchError;

/// The verdict and a human-readable account of a scenario run.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub passed: bool,
    pub text: String,
    /// Figures for `--json` (the seed's benchmark_stats.json fields where they apply).
    pub stats: serde_json::Value,
}

pub async fn run(name: Scenario, args: &BenchArgs) -> Result<ScenarioReport, BenchError> {
    match name {
        Scenario::Abacus => abacus::run(args).await,
        Scenario::Giftcodes => giftcodes::run(args).await,
        Scenario::Primes => primes::run(args).await,
        Scenario::Todos => todos::run(args).await,
    }
}

/// One client per concurrent user, spread round-robin over the base URLs.
async fn clients(args: &BenchArgs, count: usize) -> Result<Vec<Client>, BenchError> {
    let mut clients = Vec::with_capacity(count);
    for index in 0..count.max(1) {
        let url = &args.urls[index % args.urls.len()];
        clients.push(Client::new(url, args.timeout).await?);
    }
    Ok(clients)
}

/// Runs `op` for items `0..count`, each client taking the next item when it is free.
/// Everything runs in the calling task, so `op` may use `Cell`s and need not be `Send`.
async fn each<T>(
    clients: &mut [Client],
    count: u64,
    op: impl AsyncFn(&mut Client, u64) -> T,
) -> Vec<T> {
    let next = Cell::new(0u64);
    let workers = clients.iter_mut().map(|client| {
        let (next, op) = (&next, &op);
        async move {
            let mut out = Vec::new();
            loop {
                let item = next.get();
                if item >= count {
                    return out;
                }
                next.set(item + 1);
                out.push(op(client, item).await);
            }
        }
    });
    futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// A request that never got a definitive answer, with the last thing seen.
#[derive(Debug, Clone)]
pub struct Unanswered(pub String);

/// Sends a request, repeating it unchanged (same idempotency key) on 5xx, 409, 429,
/// timeouts and connection errors, up to `attempts` times in all.
async fn send_retrying(
    client: &mut Client,
    request: (&str, &str),
    headers: &[(&str, &str)],
    body: &[u8],
    attempts: u32,
) -> Result<Reply, Unanswered> {
    let (method, path) = request;
    let mut last = String::new();
    for attempt in 0..attempts.max(1) {
        let mut wait = Duration::from_millis(100 << attempt.min(4));
        match client.send(method, path, headers, body).await {
            Ok(reply) if reply.status >= 500 || reply.status == 409 || reply.status == 429 => {
                last = format!("status {}", reply.status);
                if let Some(seconds) = reply.retry_after {
                    wait = Duration::from_secs(seconds.clamp(1, 10));
                }
            }
            Ok(reply) => return Ok(reply),
            Err(e) => last = e.to_string(),
        }
        if attempt + 1 < attempts {
            tokio::time::sleep(wait).await;
        }
    }
    Err(Unanswered(last))
}

/// A scenario's account, one `label        value` line at a time.
struct Text(String);

impl Text {
    /// Starts with `scenario     NAME, WHAT`.
    fn new(name: &str, what: std::fmt::Arguments) -> Self {
        let mut text = Text(String::new());
        text.line("scenario", format_args!("{name}, {what}"));
        text
    }

    /// `label` padded to the value column, then `value`.
    fn line(&mut self, label: &str, value: std::fmt::Arguments) {
        let _ = writeln!(self.0, "{label:<12} {value}");
    }

    fn push(&mut self, lines: &str) {
        self.0.push_str(lines);
    }

    fn report(self, passed: bool, stats: serde_json::Value) -> ScenarioReport {
        ScenarioReport {
            passed,
            text: self.0,
            stats,
        }
    }
}

/// "latency p50 … p99 … max …" over the given durations.
fn latency_line(mut durations: Vec<Duration>) -> String {
    if durations.is_empty() {
        return "latency      no responses\n".to_string();
    }
    durations.sort_unstable();
    let at = |q: f64| {
        let index = ((durations.len() as f64 * q).ceil() as usize).clamp(1, durations.len()) - 1;
        durations[index].as_secs_f64() * 1000.0
    };
    let mut line = String::new();
    let _ = writeln!(
        line,
        "latency      p50 {:.2}ms  p90 {:.2}ms  p99 {:.2}ms  max {:.2}ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    line
}

/// Counts by status code, "200: 5, 500: 1".
fn status_line(statuses: impl IntoIterator<Item = u16>) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        *counts.entry(status).or_insert(0u64) += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}
