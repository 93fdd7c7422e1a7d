//! `floodgate bench`: a wrk/autocannon-style HTTP/1.1 load generator.
//!
//! Hand-rolled client on raw TCP streams: requests are encoded once, written `-p` at a time,
//! and responses parsed without allocation from a reused buffer. Each worker thread runs a
//! current-thread runtime over its share of the connections; per-worker HDR histograms are
//! merged at the end. Scenarios (`--scenario`) check the services' behaviour instead.

mod args;
pub mod broker;
mod client;
mod closed;
mod compare;
mod conn;
mod ctx;
mod deadline;
mod error;
mod html;
mod idle;
mod metrics;
mod open;
mod parse;
mod plan;
mod progress;
mod report;
mod request;
mod scenario;
mod stats;
mod summary;
mod target;
mod timeline;
mod worker;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use clap::Parser;

pub use args::{parse_duration, BenchArgs, Scenario};
pub use conn::ErrorKind;
pub use error::BenchError;
pub use parse::{ParseError, Response, ResponseParser};
pub use report::{json as summary_json, table as summary_table};
pub use scenario::{run as run_scenario, ScenarioReport};
pub use stats::Stats;
pub use summary::{Percentiles, Summary};

use ctx::Clock;
use plan::Plan;
use stats::Live;

/// Entry point for `floodgate bench ARGS...`: parses, runs, prints, and says how it went.
/// `default_api_key` is used when neither `--api-key` nor ABACUS_API_KEYS gives one.
pub async fn run(args: Vec<String>, default_api_key: Option<String>) -> ExitCode {
    if args.first().map(String::as_str) == Some("compare") {
        return run_compare(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("broker") {
        return run_broker(&args[1..]).await;
    }
    let parsed =
        BenchArgs::try_parse_from(std::iter::once("floodgate bench".to_string()).chain(args));
    match parsed {
        Ok(mut args) => {
            args.api_key = args.api_key.or(default_api_key);
            run_args(args).await
        }
        Err(e) => usage(&e),
    }
}

/// Prints a flag error (exit 2) or the help it asked for (exit 0).
fn usage(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// `floodgate bench compare A.json B.json [--html FILE]`.
fn run_compare(args: &[String]) -> ExitCode {
    let parsed = compare::CompareArgs::try_parse_from(
        std::iter::once("floodgate bench compare".to_string()).chain(args.iter().cloned()),
    );
    match parsed {
        Ok(args) => match compare::run(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("floodgate bench compare: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => usage(&e),
    }
}

/// `floodgate bench broker --brokers B [-c 50] [-d 10s]`: the broker's echo round trip.
async fn run_broker(args: &[String]) -> ExitCode {
    let parsed = broker::BrokerArgs::try_parse_from(
        std::iter::once("floodgate bench broker".to_string()).chain(args.iter().cloned()),
    );
    let args = match parsed {
        Ok(args) => args,
        Err(e) => return usage(&e),
    };
    match broker::run(&args).await {
        Ok(measured) => {
            print!("{}", measured.text(&args));
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&measured.json(&args)).unwrap_or_default();
                if let Err(e) = report::write_file(path, text.as_bytes()) {
                    eprintln!("floodgate bench broker: {e}");
                    return ExitCode::FAILURE;
                }
            }
            if measured.replies > 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("floodgate bench broker: no replies");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("floodgate bench broker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs parsed arguments: a scenario or a load run with its reports.
pub async fn run_args(args: BenchArgs) -> ExitCode {
    if let Some(name) = args.scenario {
        return match scenario::run(name, &args).await {
            Ok(mut report) => {
                print!("{}", report.text);
                if let Some(path) = &args.json {
                    report.stats["passed"] = report.passed.into();
                    let text = serde_json::to_string_pretty(&report.stats).unwrap_or_default();
                    if let Err(e) = report::write_file(path, text.as_bytes()) {
                        eprintln!("floodgate bench: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                if report.passed {
                    println!("PASS");
                    ExitCode::SUCCESS
                } else {
                    println!("FAIL");
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("floodgate bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match load_with_reports(&args).await {
        Ok(summary) if summary.stats.responses() > 0 => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("floodgate bench: no responses received");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("floodgate bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A load run with everything the flags ask for: metrics snapshots, progress, table, files.
async fn load_with_reports(args: &BenchArgs) -> Result<Summary, BenchError> {
    let snapshots = metrics::Snapshots::new(args);
    let before = snapshots.take("before").await;
    let summary = load(args).await?;
    let after = snapshots.take("after").await;
    print!("{}", report::table(&summary));
    if let Some(path) = &args.json {
        report::write_json(&summary, path)?;
    }
    if let Some(path) = &args.csv {
        report::write_csv(&summary, path)?;
    }
    if let Some(path) = &args.html {
        let name = summary.urls.first().cloned().unwrap_or_default();
        html::write(&[(name, report::json(&summary))], path)?;
    }
    snapshots.write(&[before, after])?;
    Ok(summary)
}

/// Runs the load described by `args` and returns the merged measurements (no printing
/// except the progress line).
pub async fn load(args: &BenchArgs) -> Result<Summary, BenchError> {
    let plan = Arc::new(Plan::from_args(args).await?);
    let live = Arc::new(Live::default());
    let start = Instant::now();
    let started_at = SystemTime::now();
    let record_from = start + plan.warmup;
    let clock = Clock {
        start,
        record_from,
        end: plan.duration.map(|d| record_from + d),
    };
    let progress = progress::wanted(args.progress).then(|| progress::spawn(live.clone(), start));
    let mut receivers = Vec::with_capacity(plan.threads);
    for index in 0..plan.threads {
        receivers.push(worker::spawn(plan.clone(), index, clock, live.clone())?);
    }
    let mut merged: Option<Stats> = None;
    let mut finished = record_from;
    for receiver in receivers {
        let outcome = receiver.await.map_err(|_| BenchError::WorkerLost)??;
        finished = finished.max(outcome.finished);
        match &mut merged {
            Some(all) => all.merge(outcome.stats),
            None => merged = Some(outcome.stats),
        }
    }
    if let Some(handle) = progress {
        progress::stop(handle);
    }
    Ok(Summary {
        stats: merged.ok_or(BenchError::WorkerLost)?,
        elapsed: finished.saturating_duration_since(record_from),
        started_at,
        urls: plan.targets.iter().map(|t| t.url.clone()).collect(),
        connections: plan.connections,
        threads: plan.threads,
        pipelining: plan.pipelining,
        rate: plan.rate,
        method: args.method.clone(),
        warmup: plan.warmup,
    })
}
