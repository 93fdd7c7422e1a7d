//! Configuration: defaults < `floodgate.toml` < `.env` < environment < flags. Every setting
//! is named in [`settings::SETTINGS`]; the seeds' variable names are accepted as aliases so a
//! seed's `.env` keeps working. A bad value stops start-up with one line naming the setting.

pub mod dev_secrets;
mod parse;
pub mod reference;
pub mod seed_names;
pub mod settings;
mod sources;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use sources::{Layer, Source};

pub use parse::Workers;
use parse::{
    parse_bool, parse_duration_ms, parse_duration_secs, parse_partitions, parse_positive,
    parse_u64, parse_workers,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting {setting}: {reason}")]
    Invalid { setting: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("unknown setting {0}")]
    Unknown(String),
    #[error("conflicting settings for {setting}: {detail}")]
    Conflict { setting: String, detail: String },
}

impl ConfigError {
    pub(crate) fn invalid(setting: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            setting: setting.to_string(),
            reason: reason.into(),
        }
    }
}

/// A secret value: never printed by `Debug` or `--print-config`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Where to look for the optional files, and the flag layer.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// `--config`; default `./floodgate.toml` when it exists.
    pub config_file: Option<PathBuf>,
    /// `--env-file`; default `./.env` when it exists.
    pub env_file: Option<PathBuf>,
    /// Highest layer: `(setting name, value)` from command-line flags.
    pub flags: Vec<(String, String)>,
}

/// The effective value of every setting and where it came from.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    values: HashMap<&'static str, Value>,
    /// One line per seed setting read but not used (logged at start-up).
    pub ignored: Vec<String>,
}

/// A setting's effective value, its layer, and the name (or names) that set it.
#[derive(Debug, Clone)]
struct Value {
    value: String,
    source: Source,
    from: String,
}

impl Resolved {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.value.as_str())
    }
    pub fn source(&self, name: &str) -> Option<Source> {
        self.values.get(name).map(|v| v.source)
    }
    /// The name the value was given under: the setting's own, a seed alias, or seed names
    /// combined (`HOST+PORT`).
    pub fn set_by(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.from.as_str())
    }
    fn get_nonempty(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_string())
    }
    fn req(&self, name: &str) -> &str {
        // Every setting that reaches here has a default in the table.
        self.get(name).unwrap_or("")
    }

    /// `NAME = value  # source` lines with secrets and URL passwords redacted; a value set
    /// under another name says which (`# .env as HOST+PORT`). Ignored seed settings follow
    /// as comments.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in settings::SETTINGS {
            let line = match self.values.get(s.name) {
                Some(v) => {
                    let shown = if s.secret {
                        "***".to_string()
                    } else {
                        redact_url(&v.value)
                    };
                    let alias = if v.from == s.name || v.source == Source::Default {
                        String::new()
                    } else {
                        format!(" as {}", v.from)
                    };
                    format!("{} = {:?}  # {}{alias}\n", s.name, shown, v.source.as_str())
                }
                None => format!("{} = (unset)\n", s.name),
            };
            out.push_str(&line);
        }
        for line in &self.ignored {
            out.push_str(&format!("# {line}\n"));
        }
        out
    }
}

/// Hides the password in `scheme://user:password@host`.
pub fn redact_url(v: &str) -> String {
    if let Some((scheme, rest)) = v.split_once("://") {
        if let Some((creds, host)) = rest.split_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    v.to_string()
}

/// Reads the files and the process environment, then resolves.
pub fn load(opts: &LoadOptions) -> Result<(Config, Resolved), ConfigError> {
    load_from(opts, std::env::vars())
}

/// [`load`] with `env` standing in for the process environment (tests).
pub fn load_from(
    opts: &LoadOptions,
    env: impl Iterator<Item = (String, String)>,
) -> Result<(Config, Resolved), ConfigError> {
    let layers = sources::read_layers(opts, env)?;
    let resolved = resolve(&layers)?;
    let config = Config::from_resolved(&resolved)?;
    Ok((config, resolved))
}

/// Merges layers in order (later wins; within a layer the canonical name beats an alias).
/// Below the flag layer, seed names that combine into a setting (`HOST`+`PORT`,
/// `REDIS_HOST`+`REDIS_PORT`) must agree with the setting's own name when both are set;
/// flags override everything.
pub fn resolve(layers: &[Layer]) -> Result<Resolved, ConfigError> {
    let mut values = HashMap::new();
    for s in settings::SETTINGS {
        if let Some(d) = s.default {
            values.insert(
                s.name,
                Value {
                    value: d.to_string(),
                    source: Source::Default,
                    from: s.name.to_string(),
                },
            );
        }
    }
    let split = layers
        .iter()
        .position(|l| l.source == Source::Flag)
        .unwrap_or(layers.len());
    let (below, flags) = layers.split_at(split);
    merge(&mut values, below);
    combine(
        &mut values,
        "FLOODGATE_LISTEN",
        seed_names::listen(below)?,
        seed_names::same_listen,
    )?;
    combine(
        &mut values,
        "FLOODGATE_REDIS_URL",
        seed_names::redis(below)?,
        seed_names::same_redis,
    )?;
    merge(&mut values, flags);
    Ok(Resolved {
        values,
        ignored: seed_names::ignored(layers),
    })
}

fn merge(values: &mut HashMap<&'static str, Value>, layers: &[Layer]) {
    for layer in layers {
        for s in settings::SETTINGS {
            let canonical = layer.values.get_key_value(s.name);
            let alias = s
                .aliases
                .iter()
                .find_map(|a| layer.values.get_key_value(*a));
            if let Some((name, v)) = canonical.or(alias) {
                values.insert(
                    s.name,
                    Value {
                        value: v.clone(),
                        source: layer.source,
                        from: name.clone(),
                    },
                );
            }
        }
    }
}

/// Adds the seed spellings of `setting`; all of them and an explicitly set value must agree.
fn combine(
    values: &mut HashMap<&'static str, Value>,
    setting: &'static str,
    spellings: Vec<seed_names::Spelled>,
    same: fn(&str, &str) -> bool,
) -> Result<(), ConfigError> {
    let Some(first) = spellings.first().cloned() else {
        return Ok(());
    };
    let mut all = spellings;
    if let Some(v) = values.get(setting).filter(|v| v.source != Source::Default) {
        all.insert(
            0,
            seed_names::Spelled {
                value: v.value.clone(),
                source: v.source,
                from: v.from.clone(),
            },
        );
    }
    seed_names::check_agree(setting, &all, same)?;
    if values
        .get(setting)
        .is_none_or(|v| v.source == Source::Default)
    {
        values.insert(
            setting,
            Value {
                value: first.value,
                source: first.source,
                from: first.from,
            },
        );
    }
    Ok(())
}

/// The typed configuration every part of the server reads.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `floodgate worker` serves /health, /ready and /metrics.
    pub worker_listen: SocketAddr,
    pub node_id: String,
    pub redis_url: Option<String>,
    pub kafka_brokers: Option<String>,
    /// Consumer-group session (failover time after a kill -9; see docs/operations.md).
    pub kafka_session_timeout: Duration,
    /// Partitions of each topic floodgate creates (an existing topic keeps its own).
    pub kafka_partitions: i32,
    /// `fetch.wait.max.ms` of every consumer (see docs/operations.md, "Broker tuning").
    pub kafka_fetch_wait: Duration,
    /// Retention of the gift-code request and reply topics floodgate creates; `None` = the
    /// broker's default.
    pub kafka_reply_retention: Option<Duration>,
    pub database_url: Option<String>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub body_limit: usize,
    pub log_json: bool,
    /// Request metrics and /metrics (off only to measure what they cost).
    pub metrics: bool,
    pub log_filter: String,
    /// Which service workers `serve` (unless `--no-workers`) and `worker` run.
    pub workers: Workers,
    pub otel_endpoint: Option<String>,
    pub otel_protocol: String,
    pub otel_service: String,
    pub jwt_secret: Option<Secret>,
    pub rate_limit_capacity: u32,
    pub admission_wait: Duration,
    pub gift_code_timeout: Duration,
    pub tasks_topic: String,
    pub results_topic: String,
    pub primes_topic: String,
    pub primes_max_n: u64,
    pub primes_max_queued: u32,
    pub primes_result_ttl: Duration,
    pub todo_topic: String,
    pub cache_ttl: Duration,
    pub cache_staleness: Duration,
    pub todos_max_limit: u64,
    pub abacus_api_keys: Vec<Secret>,
    pub abacus_auth_enabled: bool,
    pub abacus_rate_limit_enabled: bool,
    pub abacus_rate_limit_requests: u32,
    pub abacus_rate_limit_window: Duration,
    pub abacus_idempotency_required: bool,
    pub idempotency_ttl: Duration,
    /// Seed settings read but not used, one line each; logged at start-up.
    pub ignored_settings: Vec<String>,
}

impl Config {
    /// Trace export settings, when an OTLP endpoint is configured.
    pub fn trace_export(&self) -> Option<crate::telemetry::TraceExport<'_>> {
        self.otel_endpoint
            .as_deref()
            .map(|endpoint| crate::telemetry::TraceExport {
                endpoint,
                protocol: &self.otel_protocol,
                service: &self.otel_service,
                node: &self.node_id,
            })
    }

    pub fn from_resolved(r: &Resolved) -> Result<Config, ConfigError> {
        let listen = parse_addr(r, "FLOODGATE_LISTEN")?;
        let worker_listen = parse_addr(r, "FLOODGATE_WORKER_LISTEN")?;
        let log_format = r.req("FLOODGATE_LOG_FORMAT");
        let log_json = match log_format {
            "json" => true,
            "text" => false,
            other => {
                return Err(ConfigError::invalid(
                    "FLOODGATE_LOG_FORMAT",
                    format!("expected json or text, got {other:?}"),
                ))
            }
        };
        let metrics = parse_bool(r, "FLOODGATE_METRICS")?;
        let otel_protocol = r.req("OTEL_EXPORTER_OTLP_PROTOCOL").to_string();
        if !matches!(otel_protocol.as_str(), "http/protobuf" | "http/json") {
            return Err(ConfigError::invalid(
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                format!("expected http/protobuf or http/json, got {otel_protocol:?}"),
            ));
        }
        let database_url = r.get_nonempty("FLOODGATE_DATABASE_URL");
        if let Some(u) = &database_url {
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                return Err(ConfigError::invalid(
                    "DATABASE_URL",
                    format!(
                        "expected postgres://… or sqlite://…, got {:?}",
                        redact_url(u)
                    ),
                ));
            }
        }
        let redis_url = r.get_nonempty("FLOODGATE_REDIS_URL");
        if let Some(u) = &redis_url {
            if !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
            {
                return Err(ConfigError::invalid(
                    "REDIS_URL",
                    format!("expected redis://HOST:PORT/DB, got {:?}", redact_url(u)),
                ));
            }
        }
        let abacus_api_keys = r
            .get("ABACUS_API_KEYS")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(Secret::new)
            .collect();
        Ok(Config {
            listen,
            worker_listen,
            node_id: r
                .get_nonempty("FLOODGATE_NODE_ID")
                .unwrap_or_else(default_node_id),
            redis_url,
            kafka_brokers: r.get_nonempty("FLOODGATE_KAFKA_BROKERS"),
            kafka_session_timeout: parse_duration_ms(r, "FLOODGATE_KAFKA_SESSION_TIMEOUT_MS")?,
            kafka_partitions: parse_partitions(r, "FLOODGATE_KAFKA_PARTITIONS")?,
            kafka_fetch_wait: parse_duration_ms(r, "FLOODGATE_KAFKA_FETCH_WAIT_MS")?,
            kafka_reply_retention: match parse_u64(r, "FLOODGATE_KAFKA_REPLY_RETENTION_MS")? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            database_url,
            max_connections: parse_positive(r, "FLOODGATE_MAX_CONNECTIONS")? as usize,
            header_timeout: parse_duration_ms(r, "FLOODGATE_HEADER_TIMEOUT_MS")?,
            body_timeout: parse_duration_ms(r, "FLOODGATE_BODY_TIMEOUT_MS")?,
            idle_timeout: parse_duration_ms(r, "FLOODGATE_IDLE_TIMEOUT_MS")?,
            shutdown_timeout: parse_duration_ms(r, "FLOODGATE_SHUTDOWN_TIMEOUT_MS")?,
            body_limit: parse_positive(r, "FLOODGATE_BODY_LIMIT_BYTES")? as usize,
            log_json,
            metrics,
            log_filter: r.req("RUST_LOG").to_string(),
            workers: parse_workers(r, "FLOODGATE_WORKERS")?,
            otel_endpoint: r.get_nonempty("OTEL_EXPORTER_OTLP_ENDPOINT"),
            otel_protocol,
            otel_service: r.req("OTEL_SERVICE_NAME").to_string(),
            jwt_secret: r.get_nonempty("JWT_SECRET").map(Secret::new),
            rate_limit_capacity: parse_positive(r, "RATE_LIMIT_CAPACITY")? as u32,
            admission_wait: Duration::from_millis(parse_u64(r, "ADMISSION_WAIT_MS")?),
            gift_code_timeout: parse_duration_secs(r, "KAFKA_GIFT_CODE_TIMEOUT")?,
            tasks_topic: r.req("TASKS_TOPIC").to_string(),
            results_topic: r.req("RESULTS_TOPIC").to_string(),
            primes_topic: r.req("PRIMES_TOPIC").to_string(),
            primes_max_n: parse_positive(r, "PRIMES_MAX_N")?,
            primes_max_queued: parse_positive(r, "PRIMES_MAX_QUEUED")? as u32,
            primes_result_ttl: parse_duration_secs(r, "PRIMES_RESULT_TTL_SECONDS")?,
            todo_topic: r.req("KAFKA_TODO_TOPIC").to_string(),
            cache_ttl: parse_duration_secs(r, "CACHE_TTL_SEC")?,
            cache_staleness: parse_duration_ms(r, "CACHE_STALENESS_MS")?,
            todos_max_limit: parse_positive(r, "TODOS_MAX_LIMIT")?,
            abacus_api_keys,
            abacus_auth_enabled: parse_bool(r, "ABACUS_AUTH_ENABLED")?,
            abacus_rate_limit_enabled: parse_bool(r, "ABACUS_RATE_LIMIT_ENABLED")?,
            abacus_rate_limit_requests: parse_positive(r, "ABACUS_RATE_LIMIT_REQUESTS")? as u32,
            abacus_rate_limit_window: parse_duration_secs(r, "ABACUS_RATE_LIMIT_WINDOW_SECONDS")?,
            abacus_idempotency_required: parse_bool(r, "ABACUS_IDEMPOTENCY_REQUIRED")?,
            idempotency_ttl: parse_duration_secs(r, "IDEMPOTENCY_TTL_SECONDS")?,
            ignored_settings: r.ignored.clone(),
        })
    }

    /// Defaults only (no files, no environment): for tests and embedded use.
    pub fn defaults() -> Config {
        let resolved = resolve(&[]).unwrap_or_default();
        match Config::from_resolved(&resolved) {
            Ok(c) => c,
            Err(e) => unreachable!("built-in defaults are valid: {e}"),
        }
    }
}

fn parse_addr(r: &Resolved, name: &str) -> Result<SocketAddr, ConfigError> {
    let v = r.req(name);
    v.parse().map_err(|_| {
        ConfigError::invalid(
            name,
            format!("expected HOST:PORT like 0.0.0.0:8080, got {v:?}"),
        )
    })
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests;
