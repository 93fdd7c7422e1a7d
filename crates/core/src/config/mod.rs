//! Configuration: defaults < `floodgate.toml` < `.env` < environment < flags. Every setting
//! is a row of a settings table: core's in [`settings::CORE`], each service's in its crate's
//! `settings.rs`, put together by a [`Schema`]. The seeds' variable names are accepted as
//! aliases so a seed's `.env` keeps working. A bad value stops start-up with one line naming
//! the setting; reading a name no table has is an error too, never an empty value.

pub mod dev_secrets;
pub mod parse;
pub mod reference;
mod schema;
pub mod seed_names;
pub mod settings;
mod sources;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use schema::{DevSecret, Schema, ServiceSettings};
pub use settings::Setting;
pub use sources::{Layer, Source};

pub use parse::Workers;
use parse::{
    parse_bool, parse_duration_ms, parse_duration_secs, parse_partitions, parse_positive,
    parse_workers,
};
use settings as name;

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
    #[error("setting {0} is read but is in no settings table (add its row)")]
    Unregistered(String),
}

impl ConfigError {
    pub fn invalid(setting: &str, reason: impl Into<String>) -> Self {
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
    /// Every row of the schema the values were resolved for, in order.
    rows: Vec<&'static Setting>,
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
    /// The value of `name` (canonical name), if it has one; `None` for names in no table
    /// too (see [`Resolved::value`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.value.as_str())
    }
    /// The value of `name` (its canonical name); an error when no table has the name, so a
    /// setting read without a row fails at start-up instead of reading as unset.
    pub fn value(&self, name: &str) -> Result<Option<&str>, ConfigError> {
        if !self.rows.iter().any(|s| s.name == name) {
            return Err(ConfigError::Unregistered(name.to_string()));
        }
        Ok(self.get(name))
    }
    pub fn source(&self, name: &str) -> Option<Source> {
        self.values.get(name).map(|v| v.source)
    }
    /// The name the value was given under: the setting's own, a seed alias, or seed names
    /// combined (`HOST+PORT`).
    pub fn set_by(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.from.as_str())
    }
    /// The trimmed value of `name`; `None` when unset or blank.
    pub fn nonempty(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .value(name)?
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_string()))
    }
    /// The value of `name` as given (empty when unset).
    pub fn text(&self, name: &str) -> Result<String, ConfigError> {
        Ok(self.value(name)?.unwrap_or("").to_string())
    }

    /// `NAME = value  # source` lines with secrets and URL passwords redacted; a value set
    /// under another name says which (`# .env as HOST+PORT`). Ignored seed settings follow
    /// as comments.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.rows {
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

/// Merges layers in order (later wins; within a layer the canonical name beats an alias).
/// Below the flag layer, seed names that combine into a setting (`HOST`+`PORT`,
/// `REDIS_HOST`+`REDIS_PORT`) must agree with the setting's own name when both are set;
/// flags override everything.
pub(crate) fn resolve(schema: &Schema, layers: &[Layer]) -> Result<Resolved, ConfigError> {
    let rows: Vec<&'static Setting> = schema.settings().collect();
    let mut values = HashMap::new();
    for s in &rows {
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
    merge(&rows, &mut values, below);
    combine(
        &mut values,
        name::LISTEN,
        seed_names::listen(below)?,
        seed_names::same_listen,
    )?;
    combine(
        &mut values,
        name::REDIS_URL,
        seed_names::redis(below)?,
        seed_names::same_redis,
    )?;
    merge(&rows, &mut values, flags);
    Ok(Resolved {
        rows,
        values,
        ignored: seed_names::ignored(schema.ignored(), layers),
    })
}

fn merge(rows: &[&'static Setting], values: &mut HashMap<&'static str, Value>, layers: &[Layer]) {
    for layer in layers {
        for s in rows {
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

/// The typed configuration every part of the server reads: core's settings as fields, each
/// registered service's as a section (`cfg.settings::<floodgate_todos::Settings>()`).
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
    /// How long idempotency records live (abacus and todo writes).
    pub idempotency_ttl: Duration,
    /// Seed settings read but not used, one line each; logged at start-up.
    pub ignored_settings: Vec<String>,
    /// The registered services' settings.
    sections: schema::Sections,
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

    /// Core's settings from `r`, with no service sections (see [`Schema::config`]).
    pub fn from_resolved(r: &Resolved) -> Result<Config, ConfigError> {
        let listen = parse_addr(r, name::LISTEN)?;
        let worker_listen = parse_addr(r, name::WORKER_LISTEN)?;
        let log_format = r.text(name::LOG_FORMAT)?;
        let log_json = match log_format.as_str() {
            "json" => true,
            "text" => false,
            other => {
                return Err(ConfigError::invalid(
                    name::LOG_FORMAT,
                    format!("expected json or text, got {other:?}"),
                ))
            }
        };
        let metrics = parse_bool(r, name::METRICS)?;
        let otel_protocol = r.text(name::OTEL_PROTOCOL)?;
        if !matches!(otel_protocol.as_str(), "http/protobuf" | "http/json") {
            return Err(ConfigError::invalid(
                name::OTEL_PROTOCOL,
                format!("expected http/protobuf or http/json, got {otel_protocol:?}"),
            ));
        }
        let database_url = r.nonempty(name::DATABASE_URL)?;
        if let Some(u) = &database_url {
            let schemes = ["sqlite:", "postgres://", "postgresql://"];
            if !schemes.iter().any(|s| u.starts_with(s)) {
                return Err(ConfigError::invalid(
                    "DATABASE_URL",
                    format!(
                        "expected postgres://… or sqlite://…, got {:?}",
                        redact_url(u)
                    ),
                ));
            }
        }
        let redis_url = r.nonempty(name::REDIS_URL)?;
        if let Some(u) = &redis_url {
            // The store's own parser, so the check cannot drift from what it connects to.
            floodgate_store::RedisStore::check_url(u).map_err(|_| {
                ConfigError::invalid(
                    "REDIS_URL",
                    format!(
                        "expected redis://HOST:PORT/DB or redis+cluster://HOST:PORT,HOST:PORT, got {:?}",
                        redact_url(u)
                    ),
                )
            })?;
        }
        Ok(Config {
            listen,
            worker_listen,
            node_id: r.nonempty(name::NODE_ID)?.unwrap_or_else(default_node_id),
            redis_url,
            kafka_brokers: r.nonempty(name::KAFKA_BROKERS)?,
            kafka_session_timeout: parse_duration_ms(r, name::KAFKA_SESSION_TIMEOUT_MS)?,
            kafka_partitions: parse_partitions(r, name::KAFKA_PARTITIONS)?,
            kafka_fetch_wait: parse_duration_ms(r, name::KAFKA_FETCH_WAIT_MS)?,
            database_url,
            max_connections: parse_positive(r, name::MAX_CONNECTIONS)? as usize,
            header_timeout: parse_duration_ms(r, name::HEADER_TIMEOUT_MS)?,
            body_timeout: parse_duration_ms(r, name::BODY_TIMEOUT_MS)?,
            idle_timeout: parse_duration_ms(r, name::IDLE_TIMEOUT_MS)?,
            shutdown_timeout: parse_duration_ms(r, name::SHUTDOWN_TIMEOUT_MS)?,
            body_limit: parse_positive(r, name::BODY_LIMIT_BYTES)? as usize,
            log_json,
            metrics,
            log_filter: r.text(name::RUST_LOG)?,
            workers: parse_workers(r, name::WORKERS)?,
            otel_endpoint: r.nonempty(name::OTEL_ENDPOINT)?,
            otel_protocol,
            otel_service: r.text(name::OTEL_SERVICE_NAME)?,
            idempotency_ttl: parse_duration_secs(r, name::IDEMPOTENCY_TTL_SECONDS)?,
            ignored_settings: r.ignored.clone(),
            sections: schema::Sections::default(),
        })
    }

    /// Core's defaults only (no files, no environment, no service sections): for tests and
    /// embedded use. A test adds a service's settings with [`Config::settings_mut`]; the
    /// binary's full defaults come from its [`Schema`].
    pub fn defaults() -> Config {
        Schema::core().defaults()
    }
}

fn parse_addr(r: &Resolved, name: &str) -> Result<SocketAddr, ConfigError> {
    let v = r.text(name)?;
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
