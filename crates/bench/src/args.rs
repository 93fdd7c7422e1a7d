//! Command-line flags for `floodgate bench`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Load generator (wrk/autocannon style) with correctness scenarios.
///
/// Closed model (default): `-c` connections each send `-p` requests back-to-back, read the
/// `-p` responses, and repeat, for `-d` seconds or `-n` requests.
///
/// Open model: `-R RATE` sends a constant total rate; latency is measured from the intended
/// send time, so a stalled server cannot hide its stall (no coordinated omission). The
/// uncorrected latency (from the actual send) is reported beside it.
///
/// Several URLs: URLs on the same host:port alternate request by request on every
/// connection; different hosts are spread over the connections (connection i uses host
/// i mod H).
///
/// Scenarios (`--scenario NAME BASE_URL...`) check the services' behaviour and exit non-zero
/// when a check fails:
///   abacus     POST /abacus/number (random ints, Idempotency-Key, retries with the same key),
///              then GET /abacus/sum must equal initial + sent. Uses -n, -c, --api-key.
///   giftcodes  POST /queue --users N times at concurrency min(N,100); every 200 must carry a
///              unique gift_code and the success rate must reach --min-success.
///   primes     POST /generate?n=<10-50|100-500|1000-5000>, polls /status/{id}; the result's
///              length and first/last primes are checked. Uses -n, -c.
///   todos      mixed GET /todos?limit=10 reads and POST /todos writes (--token JWT,
///              --write-ratio). Uses -n, -c.
///
/// `floodgate bench broker --brokers HOST:PORT` measures the broker's own request → echo →
/// reply round trip with the bus's client settings, no HTTP (`floodgate bench broker --help`).
#[derive(Debug, Clone, Parser)]
#[command(name = "floodgate bench", verbatim_doc_comment)]
pub struct BenchArgs {
    /// Target URLs (http only); with --scenario, the service base URLs.
    #[arg(value_name = "URL", required = true)]
    pub urls: Vec<String>,

    /// Open connections (closed model) or connections sharing the rate (open model).
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,

    /// Worker threads, each with its own runtime driving c/t connections.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,

    /// Requests written back-to-back per connection before reading the responses.
    #[arg(short = 'p', long, default_value_t = 1)]
    pub pipelining: usize,

    /// Run time, e.g. 10, 10s, 500ms, 1m (default 10s unless -n is given).
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Total number of requests (instead of a duration).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Constant total request rate per second (open model).
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,

    /// Load the server for this long first, without recording (e.g. 2, 2s).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,

    /// HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,

    /// Extra request header "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// Request body.
    #[arg(short = 'b', long, conflicts_with = "body_file")]
    pub body: Option<String>,

    /// Read the request body from a file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// Send a fresh `Idempotency-Key: <uuid>` with every request.
    #[arg(long)]
    pub idempotency: bool,

    /// Time allowed for a response (for a whole pipelined batch), e.g. 10s.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,

    /// Before a worker sleeps waiting for responses, poll this long (yielding the CPU each
    /// turn), so that under load it never sleeps: a sleeping generator must be woken for every
    /// response, and on loopback that wake-up is paid on the server's core. 0 turns it off.
    #[arg(long, value_parser = parse_duration, default_value = "50us", value_name = "DURATION")]
    pub idle_spin: Duration,

    /// Print a progress line every second even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,

    /// Write the summary as JSON (superset of the seed's benchmark_stats.json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML report: throughput, latency percentiles, status codes and
    /// errors over time, the HDR percentile curve, and the run's settings.
    #[arg(long, value_name = "FILE", conflicts_with = "scenario")]
    pub html: Option<PathBuf>,

    /// Write one row per request: ts,worker,url,status,elapsed,error (costs memory and time).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Fetch this Prometheus URL before and after the run; snapshots go to
    /// metrics_snapshots.txt beside --json/--csv (or in the current directory).
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,

    /// Run a correctness scenario against the given base URL(s).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,

    /// Scenario giftcodes: number of users (POST /queue calls).
    #[arg(long, default_value_t = 200)]
    pub users: u64,

    /// Scenario giftcodes: lowest acceptable success rate in percent.
    #[arg(long, default_value_t = 99.0)]
    pub min_success: f64,

    /// Scenario abacus: X-API-Key value [default: the first of $ABACUS_API_KEYS, else the
    /// zero-setup key in data/dev-secrets.env].
    #[arg(long, env = "ABACUS_API_KEYS", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Scenario todos: bearer token (JWT) for writes.
    #[arg(long)]
    pub token: Option<String>,

    /// Scenario todos: share of requests that are writes (0..1).
    #[arg(long, default_value_t = 0.1)]
    pub write_ratio: f64,

    /// Scenarios: attempts per request on 5xx, 409, 429 and timeouts (same idempotency key).
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

/// A named correctness scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Abacus,
    Giftcodes,
    Primes,
    Todos,
}

/// Parses `10`, `10s`, `250ms`, `50us`, `2m`, `1h`, `1.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{text}` (try 10, 10s, 500ms, 1m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in `{text}` (use us, ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration `{text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("50us"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("").is_err());
    }
}
