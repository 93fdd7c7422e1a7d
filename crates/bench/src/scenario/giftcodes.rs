//! Gift codes: N users each POST /queue once; every 200 must carry a gift code no other
//! user got, and enough of them must succeed (the seed's 10/200/1000-user checks).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{clients, each, latency_line, status_line, ScenarioReport, Text};
use crate::args::BenchArgs;
use crate::client::Client;
use crate::error::BenchError;

/// The seed tests at most 100 users in flight at once.
const MAX_CONCURRENCY: u64 = 100;

enum Outcome {
    Code(String, Duration),
    /// A 200 without a string gift_code.
    Malformed(Duration),
    Status(u16),
    Failed,
}

pub async fn run(args: &BenchArgs) -> Result<ScenarioReport, BenchError> {
    let users = args.users;
    if users == 0 {
        return Err(BenchError::Option("--users must be at least 1".into()));
    }
    let concurrency = users.min(MAX_CONCURRENCY) as usize;
    let mut clients = clients(args, concurrency).await?;
    let started = Instant::now();
    let outcomes = each(&mut clients, users, async |client: &mut Client, _| {
        let sent = Instant::now();
        match client.send("POST", "/queue", &[], b"").await {
            Ok(reply) if reply.status == 200 => {
                let code = reply
                    .json()
                    .and_then(|v| v.get("gift_code")?.as_str().map(str::to_string));
                match code {
                    Some(code) if !code.is_empty() => Outcome::Code(code, sent.elapsed()),
                    _ => Outcome::Malformed(sent.elapsed()),
                }
            }
            Ok(reply) => Outcome::Status(reply.status),
            Err(_) => Outcome::Failed,
        }
    })
    .await;
    let elapsed = started.elapsed();

    let mut seen = HashSet::new();
    let mut duplicates = 0u64;
    let mut malformed = 0u64;
    let mut failed = 0u64;
    let mut statuses = Vec::new();
    let mut latencies = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Code(code, latency) => {
                statuses.push(200);
                latencies.push(latency);
                if !seen.insert(code) {
                    duplicates += 1;
                }
            }
            Outcome::Malformed(latency) => {
                statuses.push(200);
                latencies.push(latency);
                malformed += 1;
            }
            Outcome::Status(status) => statuses.push(status),
            Outcome::Failed => failed += 1,
        }
    }
    let good = seen.len() as u64;
    let success_rate = good as f64 * 100.0 / users as f64;
    let mut text = Text::new(
        "giftcodes",
        format_args!("{users} users at concurrency {concurrency}"),
    );
    text.line(
        "responses",
        format_args!(
            "{} ({}), {failed} without response, {:.1} req/s",
            statuses.len(),
            status_line(statuses),
            users as f64 / elapsed.as_secs_f64().max(1e-9)
        ),
    );
    text.push(&latency_line(latencies));
    text.line(
        "codes",
        format_args!(
            "{good} unique, {duplicates} duplicates, {malformed} 200s without a gift_code"
        ),
    );
    let required = args.min_success;
    text.line(
        "success",
        format_args!("{success_rate:.2}% (required {required:.2}%)"),
    );
    let secs = elapsed.as_secs_f64();
    let stats = serde_json::json!({
        "scenario": "giftcodes",
        "timestamp": crate::report::rfc3339(std::time::SystemTime::now()),
        "total_requests": users,
        "concurrency": concurrency,
        "total_time_seconds": secs,
        "rps": users as f64 / secs.max(1e-9),
        "success_rate": success_rate,
        "unique_codes": good,
        "duplicates": duplicates,
        "without_response": failed,
    });
    let passed = duplicates == 0 && malformed == 0 && success_rate >= args.min_success;
    Ok(text.report(passed, stats))
}
