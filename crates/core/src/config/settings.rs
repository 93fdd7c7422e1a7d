//! The settings table's rows: a setting's canonical name, the seed names honoured for it,
//! its default, whether it is a secret and what it means. Core's own rows are [`CORE`];
//! each service crate keeps its rows beside its typed settings (`src/settings.rs`), and the
//! binary puts them together in a [`super::Schema`], so `--print-config`, the docs check
//! and the loader cannot drift apart.

/// One row of the settings table.
#[derive(Debug)]
pub struct Setting {
    /// Canonical name (`FLOODGATE_…` for floodgate's own settings, the seed name otherwise).
    pub name: &'static str,
    /// Other names accepted for the same setting (the seeds' `.env` names).
    pub aliases: &'static [&'static str],
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

impl Setting {
    /// A plain setting.
    pub const fn new(
        name: &'static str,
        aliases: &'static [&'static str],
        default: Option<&'static str>,
        help: &'static str,
    ) -> Setting {
        Setting {
            name,
            aliases,
            default,
            secret: false,
            help,
        }
    }

    /// A secret: no default, never printed.
    pub const fn secret(
        name: &'static str,
        aliases: &'static [&'static str],
        help: &'static str,
    ) -> Setting {
        Setting {
            name,
            aliases,
            default: None,
            secret: true,
            help,
        }
    }

    /// Whether `name` is this setting's name or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

const fn s(
    name: &'static str,
    aliases: &'static [&'static str],
    default: Option<&'static str>,
    help: &'static str,
) -> Setting {
    Setting::new(name, aliases, default, help)
}

/// Names settings: `setting_names! { A, B = "FLOODGATE_B" }` declares
/// `pub const A: &str = "A";` and `pub const B: &str = "FLOODGATE_B";`, so a name whose
/// constant reads as itself is written once. Parse with the constants, so a misspelled
/// name does not compile.
#[macro_export]
macro_rules! setting_names {
    ($($name:ident $(= $text:literal)?),* $(,)?) => {
        $(pub const $name: &str = $crate::setting_names!(@text $name $($text)?);)*
    };
    (@text $name:ident $text:literal) => { $text };
    (@text $name:ident) => { stringify!($name) };
}

pub const LISTEN: &str = "FLOODGATE_LISTEN";
pub const WORKER_LISTEN: &str = "FLOODGATE_WORKER_LISTEN";
pub const NODE_ID: &str = "FLOODGATE_NODE_ID";
pub const REDIS_URL: &str = "FLOODGATE_REDIS_URL";
pub const KAFKA_BROKERS: &str = "FLOODGATE_KAFKA_BROKERS";
pub const KAFKA_SESSION_TIMEOUT_MS: &str = "FLOODGATE_KAFKA_SESSION_TIMEOUT_MS";
pub const KAFKA_PARTITIONS: &str = "FLOODGATE_KAFKA_PARTITIONS";
pub const KAFKA_FETCH_WAIT_MS: &str = "FLOODGATE_KAFKA_FETCH_WAIT_MS";
pub const DATABASE_URL: &str = "FLOODGATE_DATABASE_URL";
pub const MAX_CONNECTIONS: &str = "FLOODGATE_MAX_CONNECTIONS";
pub const HEADER_TIMEOUT_MS: &str = "FLOODGATE_HEADER_TIMEOUT_MS";
pub const BODY_TIMEOUT_MS: &str = "FLOODGATE_BODY_TIMEOUT_MS";
pub const IDLE_TIMEOUT_MS: &str = "FLOODGATE_IDLE_TIMEOUT_MS";
pub const SHUTDOWN_TIMEOUT_MS: &str = "FLOODGATE_SHUTDOWN_TIMEOUT_MS";
pub const BODY_LIMIT_BYTES: &str = "FLOODGATE_BODY_LIMIT_BYTES";
pub const LOG_FORMAT: &str = "FLOODGATE_LOG_FORMAT";
pub const METRICS: &str = "FLOODGATE_METRICS";
pub const RUST_LOG: &str = "RUST_LOG";
pub const WORKERS: &str = "FLOODGATE_WORKERS";
pub const OTEL_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub const OTEL_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// Shared by the todo and abacus services (core's `idempotency` module keeps the records).
pub const IDEMPOTENCY_TTL_SECONDS: &str = "IDEMPOTENCY_TTL_SECONDS";

/// Core's settings: addresses, backends, HTTP limits, logging, tracing, workers.
pub const CORE: &[Setting] = &[
    s(
        LISTEN,
        &[],
        Some("0.0.0.0:8080"),
        "address the HTTP server binds",
    ),
    s(
        WORKER_LISTEN,
        &[],
        Some("0.0.0.0:9090"),
        "address `floodgate worker` serves /health, /ready and /metrics on (`--listen` on `worker`)",
    ),
    s(
        NODE_ID,
        &[],
        None,
        "name of this node in metrics, logs and reply routing (default: host-pid)",
    ),
    s(
        REDIS_URL,
        &["REDIS_URL"],
        None,
        "Redis URL (`redis+cluster://h:p,h:p` or several URLs: Redis Cluster); unset = in-memory store",
    ),
    s(
        KAFKA_BROKERS,
        &["KAFKA_BROKERS", "KAFKA_BOOTSTRAP_SERVERS"],
        None,
        "Kafka bootstrap servers; unset = in-process bus",
    ),
    s(
        KAFKA_SESSION_TIMEOUT_MS,
        &[],
        Some("8000"),
        "consumer-group session: a member killed -9 holds its partitions this long",
    ),
    s(
        KAFKA_PARTITIONS,
        &["KAFKA_PARTITIONS"],
        Some("8"),
        "partitions of each topic floodgate creates; a topic that exists keeps its own",
    ),
    s(
        KAFKA_FETCH_WAIT_MS,
        &[],
        Some("10"),
        "longest a consumer fetch waits for data (`fetch.wait.max.ms`): Tansu holds each fetch this long, Apache Kafka answers when data arrives (see Broker tuning)",
    ),
    s(
        DATABASE_URL,
        &["DATABASE_URL"],
        Some(floodgate_db::DEFAULT_SQLITE_URL),
        "postgres:// or sqlite:// URL (SQLite: embedded, one machine)",
    ),
    s(
        MAX_CONNECTIONS,
        &[],
        Some("20000"),
        "open client connections at most",
    ),
    s(
        HEADER_TIMEOUT_MS,
        &[],
        Some("10000"),
        "time a client has to send request headers, from their first byte",
    ),
    s(
        BODY_TIMEOUT_MS,
        &[],
        Some("30000"),
        "time a client has to send a request body once its headers are in (408 and close after)",
    ),
    s(
        IDLE_TIMEOUT_MS,
        &[],
        Some("60000"),
        "keep-alive connection closed after this much silence",
    ),
    s(
        SHUTDOWN_TIMEOUT_MS,
        &[],
        Some("30000"),
        "drain time on SIGTERM before exit",
    ),
    s(
        BODY_LIMIT_BYTES,
        &[],
        Some("65536"),
        "request bodies above this get 413",
    ),
    s(LOG_FORMAT, &[], Some("json"), "json | text"),
    s(
        METRICS,
        &[],
        Some("on"),
        "on | off: off drops request metrics, /metrics and the dashboard's counters",
    ),
    s(RUST_LOG, &[], Some("info"), "log filter"),
    s(
        WORKERS,
        &[],
        None,
        "which service workers serve/worker run (comma-separated names, e.g. `primes,todos`; unset = all, empty = none)",
    ),
    s(
        OTEL_ENDPOINT,
        &[],
        None,
        "OTLP/HTTP base URL (e.g. http://collector:4318); set → spans are exported",
    ),
    s(
        OTEL_PROTOCOL,
        &[],
        Some("http/protobuf"),
        "http/protobuf | http/json",
    ),
    s(
        OTEL_SERVICE_NAME,
        &[],
        Some("floodgate"),
        "service name on exported spans",
    ),
    s(
        IDEMPOTENCY_TTL_SECONDS,
        &["ABACUS_IDEMPOTENCY_TTL_SECONDS"],
        Some("86400"),
        "how long idempotency records live",
    ),
];
