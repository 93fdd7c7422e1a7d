//! The end-of-run table and the `--json` / `--csv` files.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use crate::conn::ErrorKind;
use crate::error::BenchError;
use crate::summary::{Percentiles, Summary};

/// The human-readable table printed at the end of a run.
pub fn table(summary: &Summary) -> String {
    let mut out = String::new();
    let urls = match summary.urls.as_slice() {
        [one] => one.clone(),
        many => format!("{} (+{} more, round-robin)", many[0], many.len() - 1),
    };
    let model = match summary.rate {
        Some(rate) => format!("open model at {rate} req/s"),
        None => format!("closed model, pipelining {}", summary.pipelining),
    };
    let _ = writeln!(out, "Target       {urls}");
    let _ = writeln!(
        out,
        "Load         {} connections, {} threads, {model}, {:.2}s",
        summary.connections,
        summary.threads,
        summary.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "\nLatency      {:>10} {:>10} {:>10} {:>10} {:>10}",
        "p50", "p90", "p99", "p99.9", "max"
    );
    let label = if summary.rate.is_some() {
        "corrected"
    } else {
        "latency"
    };
    latency_row(&mut out, label, summary.latency());
    if summary.rate.is_some() {
        latency_row(&mut out, "uncorrected", summary.uncorrected());
    }
    let stats = &summary.stats;
    let _ = writeln!(
        out,
        "\nRequests     {} total, {} responses, {:.1} req/s",
        summary.total_requests(),
        stats.responses(),
        summary.rps()
    );
    let _ = writeln!(
        out,
        "Transfer     {} read ({}/s), {} written",
        bytes(stats.bytes_read as f64),
        bytes(summary.bytes_read_per_second()),
        bytes(stats.bytes_written as f64)
    );
    let codes: Vec<String> = stats
        .statuses()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect();
    let codes = if codes.is_empty() {
        "none".to_string()
    } else {
        codes.join(", ")
    };
    let _ = writeln!(out, "Status       {codes}");
    let _ = writeln!(out, "Success      {:.2}% (2xx)", summary.success_rate());
    let errors: Vec<String> = ErrorKind::ALL
        .iter()
        .map(|&kind| format!("{} {}", kind.name(), stats.errors(kind)))
        .collect();
    let _ = writeln!(out, "Errors       {}", errors.join(", "));
    out
}

fn latency_row(out: &mut String, label: &str, p: Option<Percentiles>) {
    let Some(p) = p else {
        let _ = writeln!(out, "  {label:<10} no responses");
        return;
    };
    let _ = writeln!(
        out,
        "  {label:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        millis(p.p50),
        millis(p.p90),
        millis(p.p99),
        millis(p.p999),
        millis(p.max)
    );
}

fn millis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{ms:.2}ms")
    }
}

fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

fn percentiles_json(p: Option<Percentiles>) -> Value {
    match p {
        None => Value::Null,
        Some(p) => json!({
            "p50": p.p50, "p90": p.p90, "p99": p.p99, "p99_9": p.p999,
            "max": p.max, "mean": p.mean, "min": p.min,
        }),
    }
}

/// A superset of the seed's benchmark_stats.json.
pub fn json(summary: &Summary) -> Value {
    let stats = &summary.stats;
    let statuses: Map<String, Value> = stats
        .statuses()
        .map(|(code, n)| (code.to_string(), json!(n)))
        .collect();
    let errors: Map<String, Value> = ErrorKind::ALL
        .iter()
        .map(|&kind| (kind.name().to_string(), json!(stats.errors(kind))))
        .collect();
    let latency = summary.latency();
    json!({
        "timestamp": rfc3339(summary.started_at),
        "total_requests": summary.total_requests(),
        "concurrency": summary.connections,
        "total_time_seconds": summary.elapsed.as_secs_f64(),
        "rps": summary.rps(),
        "success_rate": summary.success_rate(),
        "successful_requests": stats.successes(),
        "failed_requests": summary.total_requests() - stats.successes(),
        "responses": stats.responses(),
        "avg_latency_ms": latency.map(|p| p.mean),
        "p50_latency_ms": latency.map(|p| p.p50),
        "p90_latency_ms": latency.map(|p| p.p90),
        "p99_latency_ms": latency.map(|p| p.p99),
        "max_latency_ms": latency.map(|p| p.max),
        "latency_ms": percentiles_json(latency),
        "latency_uncorrected_ms": percentiles_json(summary.uncorrected()),
        "status_codes": statuses,
        "errors": errors,
        "bytes_read": stats.bytes_read,
        "bytes_written": stats.bytes_written,
        "bytes_read_per_second": summary.bytes_read_per_second(),
        "threads": summary.threads,
        "pipelining": summary.pipelining,
        "target_rate": summary.rate,
        "urls": summary.urls,
        "method": summary.method,
        "warmup_seconds": summary.warmup.as_secs_f64(),
        "latency_curve_ms": summary.latency_curve(),
        "timeline": stats.timeline.json(summary.elapsed),
    })
}

pub fn write_json(summary: &Summary, path: &Path) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(&json(summary)).unwrap_or_default();
    write_file(path, text.as_bytes())
}

/// One row per request: `ts,worker,url,status,elapsed,error` (seconds; empty status on error).
pub fn write_csv(summary: &Summary, path: &Path) -> Result<(), BenchError> {
    let wrap = |source| BenchError::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(wrap)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let start = unix_seconds(summary.started_at);
    let urls: Vec<String> = summary.urls.iter().map(|u| csv_field(u)).collect();
    writeln!(out, "ts,worker,url,status,elapsed,error").map_err(wrap)?;
    let mut rows = summary.stats.rows.clone().unwrap_or_default();
    rows.sort_by_key(|r| (r.at_us, r.conn));
    for row in rows {
        let status = match row.status {
            0 => String::new(),
            code => code.to_string(),
        };
        writeln!(
            out,
            "{:.6},{},{},{},{:.6},{}",
            start + row.at_us as f64 / 1e6,
            row.conn,
            urls.get(usize::from(row.url)).map_or("", String::as_str),
            status,
            row.elapsed_us as f64 / 1e6,
            row.error.map_or("", ErrorKind::name),
        )
        .map_err(wrap)?;
    }
    out.flush().map_err(wrap)
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, bytes).map_err(|source| BenchError::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

pub fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
