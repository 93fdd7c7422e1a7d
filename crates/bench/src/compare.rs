//! `floodgate bench compare A.json B.json`: two `--json` reports side by side, for a
//! before/after comparison, and optionally both on the charts of one HTML page.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use serde_json::Value;

use crate::error::BenchError;

/// Compare two runs written with `floodgate bench --json FILE`.
#[derive(Debug, Clone, Parser)]
#[command(name = "floodgate bench compare")]
pub struct CompareArgs {
    /// The first run (the baseline).
    pub a: PathBuf,
    /// The second run.
    pub b: PathBuf,
    /// Also write both runs on the charts of one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// (label, how to read it from a report, digits, whether lower is better)
type Row = (&'static str, fn(&Value) -> Option<f64>, usize, bool);

const ROWS: &[Row] = &[
    ("requests/s", |r| r["rps"].as_f64(), 1, false),
    ("p50 ms", |r| r["p50_latency_ms"].as_f64(), 2, true),
    ("p90 ms", |r| r["p90_latency_ms"].as_f64(), 2, true),
    ("p99 ms", |r| r["p99_latency_ms"].as_f64(), 2, true),
    ("p99.9 ms", |r| r["latency_ms"]["p99_9"].as_f64(), 2, true),
    ("max ms", |r| r["max_latency_ms"].as_f64(), 2, true),
    ("success %", |r| r["success_rate"].as_f64(), 2, false),
    ("requests", |r| r["total_requests"].as_f64(), 0, false),
    ("errors", errors, 0, true),
    ("connections", |r| r["concurrency"].as_f64(), 0, false),
    ("seconds", |r| r["total_time_seconds"].as_f64(), 2, false),
];

fn errors(r: &Value) -> Option<f64> {
    let all = r["errors"].as_object()?;
    Some(all.values().filter_map(Value::as_f64).sum())
}

pub fn read(path: &PathBuf) -> Result<Value, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::ReadFile {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| BenchError::Option(format!("{}: {e}", path.display())))
}

/// The side-by-side table: one row per figure, with B's change against A.
pub fn table(a_name: &str, a: &Value, b_name: &str, b: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>14} {:>14} {:>9}",
        "", a_name, b_name, "change"
    );
    for (label, read, digits, lower_better) in ROWS {
        let (x, y) = (read(a), read(b));
        let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
        let change = match (x, y) {
            (Some(x), Some(y)) if x != 0.0 => {
                let pct = (y - x) / x * 100.0;
                let better = if *lower_better { pct < 0.0 } else { pct > 0.0 };
                let mark = if pct.abs() < 0.05 {
                    ""
                } else if better {
                    " +"
                } else {
                    " -"
                };
                format!("{pct:+.1}%{mark}")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{label:<14} {:>14} {:>14} {change:>9}",
            cell(x),
            cell(y)
        );
    }
    let codes = |r: &Value| {
        r["status_codes"].as_object().map_or(String::new(), |m| {
            m.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let _ = writeln!(out, "status {a_name}: {}", codes(a));
    let _ = writeln!(out, "status {b_name}: {}", codes(b));
    let _ = writeln!(out, "(+ better, - worse)");
    out
}

/// Runs `compare`: prints the table, writes the page when asked.
pub fn run(args: &CompareArgs) -> Result<String, BenchError> {
    let (a, b) = (read(&args.a)?, read(&args.b)?);
    let name = |p: &PathBuf| {
        p.file_stem().map_or_else(
            || p.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    };
    let (mut a_name, b_name) = (name(&args.a), name(&args.b));
    if a_name == b_name {
        a_name = args.a.display().to_string();
    }
    let text = table(&a_name, &a, &b_name, &b);
    if let Some(path) = &args.html {
        crate::html::write(&[(a_name, a), (b_name, b)], path)?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_are_relative_to_the_first_run() {
        let a = json!({"rps": 1000.0, "p99_latency_ms": 10.0, "errors": {"read": 2, "timeout": 2}});
        let b = json!({"rps": 1500.0, "p99_latency_ms": 12.5, "errors": {"read": 0}});
        let t = table("before", &a, "after", &b);
        let line = |label: &str| {
            t.lines()
                .find(|l| l.starts_with(label))
                .unwrap()
                .to_string()
        };
        assert!(line("requests/s").ends_with("+50.0% +"), "{t}");
        assert!(line("p99 ms").ends_with("+25.0% -"), "{t}");
        assert!(line("errors").ends_with("-100.0% +"), "{t}");
        assert!(line("p50 ms").contains('–'), "{t}");
    }
}
