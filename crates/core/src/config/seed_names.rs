//! The seeds' settings that are not one-to-one aliases: names that together spell one of
//! floodgate's settings (`HOST`+`PORT` → the listen address, `REDIS_HOST`+`REDIS_PORT` → the
//! Redis URL), and names floodgate has no use for, which are logged once at start-up.
//!
//! A seed name and floodgate's own name for the same setting must agree when both are set
//! (below the flag layer): a seed `.env` must never silently change a backend or address.

use std::net::{IpAddr, SocketAddr};

use super::{ConfigError, Layer, Source};

/// Seed names read but not used, and why; each one present is logged at start-up. These
/// are the ones no service owns; each service lists its own (`ServiceSettings::IGNORED`).
pub const IGNORED: &[(&str, &str)] = &[
    // Seed 000 (core/config.py, .env.example).
    (
        "WORKERS",
        "gunicorn processes; floodgate is one multi-threaded process per node",
    ),
    ("GUNICORN_LOG_LEVEL", "set RUST_LOG instead"),
    (
        "GUNICORN_KEEPALIVE",
        "set FLOODGATE_IDLE_TIMEOUT_MS instead (milliseconds)",
    ),
    (
        "BENCHMARK_PORT",
        "the seed's benchmark script; use `floodgate bench`",
    ),
    (
        "NUM_REQUESTS",
        "the seed's benchmark script; use `floodgate bench`",
    ),
    (
        "CONCURRENCY",
        "the seed's benchmark script; use `floodgate bench`",
    ),
    (
        "KAFKA_BOOTSTRAP_SERVERS_INTERNAL",
        "Docker Compose wiring of the seed; set KAFKA_BROKERS",
    ),
    (
        "REDIS_URL_INTERNAL",
        "Docker Compose wiring of the seed; set REDIS_URL",
    ),
    (
        "KAFKA_NODE_ID",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_PROCESS_ROLES",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_LISTENERS",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_ADVERTISED_LISTENERS",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_CONTROLLER_LISTENER_NAMES",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS",
        "configures the Kafka broker container, not the server",
    ),
    (
        "KAFKA_LOG_DIRS",
        "configures the Kafka broker container, not the server",
    ),
    // Seed 003 (internal/config/config.go).
    (
        "DB_POOL_SIZE",
        "floodgate keeps 16 PostgreSQL connections per node (writes are batched)",
    ),
    (
        "REDIS_POOL_SIZE",
        "floodgate multiplexes one Redis connection per node",
    ),
    // Seed 004 (src/storage.py).
    (
        "REDIS_SOCKET_CONNECT_TIMEOUT",
        "floodgate's Redis client has fixed timeouts; /ready reports an unreachable store",
    ),
    (
        "REDIS_SOCKET_TIMEOUT",
        "floodgate's Redis client has fixed timeouts; /ready reports an unreachable store",
    ),
    (
        "REDIS_HEALTH_CHECK_INTERVAL",
        "floodgate's Redis client reconnects on its own",
    ),
    (
        "REDIS_MAX_OPERATION_ATTEMPTS",
        "a failed store call answers 503 with Retry-After; clients retry",
    ),
    (
        "REDIS_BACKOFF_BASE_SECONDS",
        "a failed store call answers 503 with Retry-After; clients retry",
    ),
    (
        "REDIS_BACKOFF_CAP_SECONDS",
        "a failed store call answers 503 with Retry-After; clients retry",
    ),
];

/// Names combined into one of floodgate's settings.
pub const COMBINED: &[&str] = &["HOST", "PORT", "HTTP_PORT", "REDIS_HOST", "REDIS_PORT"];

/// One line per ignored seed setting present in `layers`.
pub fn ignored<'a>(
    names: impl Iterator<Item = &'a (&'static str, &'static str)>,
    layers: &[Layer],
) -> Vec<String> {
    names
        .filter_map(|(name, why)| {
            let layer = layers.iter().rev().find(|l| l.values.contains_key(*name))?;
            Some(format!(
                "ignoring seed setting {name} (from {}): {why}",
                layer.source.as_str()
            ))
        })
        .collect()
}

/// A value spelled by one or more names, with the layer it came from.
#[derive(Debug, Clone)]
pub struct Spelled {
    pub value: String,
    pub source: Source,
    /// How `--print-config` names it: `PORT`, `HOST+PORT`, `REDIS_HOST+REDIS_PORT`.
    pub from: String,
}

/// The highest layer's value of each of `names`.
fn latest<'a>(layers: &'a [Layer], names: &[&'a str]) -> Vec<(&'a str, &'a str, Source)> {
    names
        .iter()
        .filter_map(|n| {
            let l = layers.iter().rev().find(|l| l.values.contains_key(*n))?;
            Some((*n, l.values[*n].as_str(), l.source))
        })
        .collect()
}

fn spelled(found: &[(&str, &str, Source)], value: String) -> Spelled {
    Spelled {
        value,
        // Layers are ordered lowest first, and so is `Source`.
        source: found
            .iter()
            .map(|f| f.2)
            .max_by_key(|s| *s as u8)
            .unwrap_or(Source::Default),
        from: found.iter().map(|f| f.0).collect::<Vec<_>>().join("+"),
    }
}

fn port(name: &str, v: &str) -> Result<u16, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError::invalid(name, format!("expected a port number, got {v:?}")))
}

/// Seed 000's `HOST`/`PORT` (uvicorn's bind; defaults `0.0.0.0` and, alone, floodgate's
/// port 8080) and seed 003's `HTTP_PORT` (Gin's `:PORT`, every interface).
pub fn listen(layers: &[Layer]) -> Result<Vec<Spelled>, ConfigError> {
    let mut out = Vec::new();
    let found = latest(layers, &["HOST", "PORT"]);
    if !found.is_empty() {
        let get = |n: &str| found.iter().find(|f| f.0 == n).map(|f| f.1);
        let host = get("HOST").map(str::trim).unwrap_or("0.0.0.0");
        let ip: IpAddr = host.parse().map_err(|_| {
            ConfigError::invalid("HOST", format!("expected an IP address, got {host:?}"))
        })?;
        let p = get("PORT")
            .map(|p| port("PORT", p))
            .transpose()?
            .unwrap_or(8080);
        out.push(spelled(&found, SocketAddr::new(ip, p).to_string()));
    }
    let found = latest(layers, &["HTTP_PORT"]);
    if let Some(f) = found.first() {
        let p = port("HTTP_PORT", f.1)?;
        out.push(spelled(&found, format!("0.0.0.0:{p}")));
    }
    Ok(out)
}

/// Seed 004's `REDIS_HOST`/`REDIS_PORT` (redis-py, database 0; defaults `localhost`, 6379).
pub fn redis(layers: &[Layer]) -> Result<Vec<Spelled>, ConfigError> {
    let found = latest(layers, &["REDIS_HOST", "REDIS_PORT"]);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let get = |n: &str| found.iter().find(|f| f.0 == n).map(|f| f.1.trim());
    let host = get("REDIS_HOST").unwrap_or("localhost");
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(ConfigError::invalid(
            "REDIS_HOST",
            format!("expected a host name or address, got {host:?}"),
        ));
    }
    let p = get("REDIS_PORT")
        .map(|p| port("REDIS_PORT", p))
        .transpose()?
        .unwrap_or(6379);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(vec![spelled(&found, format!("redis://{host}:{p}/0"))])
}

/// What two listen addresses mean, for comparing them.
pub fn same_listen(a: &str, b: &str) -> bool {
    match (
        a.trim().parse::<SocketAddr>(),
        b.trim().parse::<SocketAddr>(),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// Host, port and database of a Redis URL (credentials and options aside).
fn redis_target(url: &str) -> Option<(String, u16, u32)> {
    let rest = url.trim().split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
    let db = if db.is_empty() { 0 } else { db.parse().ok()? };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, p.parse().ok()?),
        _ => (hostport, 6379),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = match host.to_ascii_lowercase().as_str() {
        "" | "localhost" => "127.0.0.1".to_string(),
        h => h.to_string(),
    };
    Some((host, port, db))
}

pub fn same_redis(a: &str, b: &str) -> bool {
    match (redis_target(a), redis_target(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// The names each layer used for the same setting, for the conflict message.
pub fn describe(s: &Spelled) -> String {
    format!(
        "{} ({}) means {:?}",
        s.from,
        s.source.as_str(),
        super::redact_url(&s.value)
    )
}

/// Fails when the spellings of one setting disagree.
pub fn check_agree(
    setting: &str,
    spellings: &[Spelled],
    same: fn(&str, &str) -> bool,
) -> Result<(), ConfigError> {
    for (i, a) in spellings.iter().enumerate() {
        for b in &spellings[i + 1..] {
            if !same(&a.value, &b.value) {
                return Err(ConfigError::Conflict {
                    setting: setting.to_string(),
                    detail: format!("{} but {}; keep one", describe(a), describe(b)),
                });
            }
        }
    }
    Ok(())
}
