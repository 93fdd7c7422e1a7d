//! Todos: mixed cached reads (GET /todos?limit=10) and authenticated writes (POST /todos),
//! checking every answer has the documented status and shape.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{clients, each, latency_line, status_line, ScenarioReport, Text};
use crate::args::BenchArgs;
use crate::client::Client;
use crate::error::BenchError;
use crate::request::Rng;

const DEFAULT_REQUESTS: u64 = 1000;

struct Outcome {
    write: bool,
    status: Option<u16>,
    latency: Duration,
    /// Why the answer was wrong, if it was.
    wrong: Option<String>,
}

pub async fn run(args: &BenchArgs) -> Result<ScenarioReport, BenchError> {
    let count = args.requests.unwrap_or(DEFAULT_REQUESTS);
    if !(0.0..=1.0).contains(&args.write_ratio) {
        return Err(BenchError::Option(
            "--write-ratio must be between 0 and 1".into(),
        ));
    }
    let bearer = match (&args.token, args.write_ratio > 0.0) {
        (Some(token), _) => format!("Bearer {token}"),
        (None, false) => String::new(),
        (None, true) => {
            return Err(BenchError::Option(
                "the todos scenario needs --token JWT for writes (or --write-ratio 0)".into(),
            ))
        }
    };
    let concurrency = args.connections.min(count as usize).max(1);
    let mut clients = clients(args, concurrency).await?;
    let started = Instant::now();
    let outcomes = each(&mut clients, count, async |client: &mut Client, item| {
        let write = (Rng::seeded().next_u64() as f64 / u64::MAX as f64) < args.write_ratio;
        let sent = Instant::now();
        let result = if write {
            let body = format!(
                "{{\"title\":\"bench todo {item}\",\"description\":\"written by floodgate bench\"}}"
            );
            let headers = [
                ("Authorization", bearer.as_str()),
                ("Content-Type", "application/json"),
            ];
            client
                .send("POST", "/todos", &headers, body.as_bytes())
                .await
        } else {
            client.get("/todos?limit=10", &[]).await
        };
        let latency = sent.elapsed();
        let (status, wrong) = match result {
            Ok(reply) => (Some(reply.status), judge(write, reply.status, reply.json())),
            Err(e) => (None, Some(e.to_string())),
        };
        Outcome {
            write,
            status,
            latency,
            wrong,
        }
    })
    .await;
    let elapsed = started.elapsed();

    let writes = outcomes.iter().filter(|o| o.write).count();
    let wrong: Vec<&str> = outcomes.iter().filter_map(|o| o.wrong.as_deref()).collect();
    let mut text = Text::new(
        "todos",
        format_args!("{count} requests at concurrency {concurrency}"),
    );
    text.line(
        "requests",
        format_args!(
            "{} reads, {writes} writes, {:.1} req/s",
            outcomes.len() - writes,
            outcomes.len() as f64 / elapsed.as_secs_f64().max(1e-9)
        ),
    );
    let statuses = status_line(outcomes.iter().filter_map(|o| o.status));
    text.line("status", format_args!("{statuses}"));
    text.push(&latency_line(outcomes.iter().map(|o| o.latency).collect()));
    text.line("wrong", format_args!("{}", wrong.len()));
    for why in wrong.iter().take(5) {
        text.push(&format!("  {why}\n"));
    }
    Ok(text.report(wrong.is_empty(), serde_json::json!({"scenario": "todos"})))
}

/// Why a reply is not what the contract says, if it is not.
fn judge(write: bool, status: u16, body: Option<Value>) -> Option<String> {
    if write {
        if status != 202 {
            return Some(format!("POST /todos: status {status}, expected 202"));
        }
        let has_id = body.as_ref().and_then(|v| v.get("id")?.as_str()).is_some();
        return (!has_id).then(|| "POST /todos: no id in the reply".to_string());
    }
    if status != 200 {
        return Some(format!(
            "GET /todos?limit=10: status {status}, expected 200"
        ));
    }
    match body.as_ref().and_then(Value::as_array) {
        Some(items) if items.len() <= 10 => None,
        Some(items) => Some(format!("GET /todos?limit=10: {} items", items.len())),
        None => Some("GET /todos?limit=10: not a JSON array".into()),
    }
}
