//! Every setting floodgate reads: its canonical name, the seed names honoured for it, its
//! default, and whether it is a secret. One table, so `--print-config`, the docs check and
//! the loader cannot drift apart.

pub struct Setting {
    /// Canonical name (`FLOODGATE_…` for floodgate's own settings, the seed name otherwise).
    pub name: &'static str,
    /// Other names accepted for the same setting (the seeds' `.env` names).
    pub aliases: &'static [&'static str],
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

const fn s(
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

const fn secret(
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

pub const SETTINGS: &[Setting] = &[
    s(
        "FLOODGATE_LISTEN",
        &[],
        Some("0.0.0.0:8080"),
        "address the HTTP server binds",
    ),
    s(
        "FLOODGATE_WORKER_LISTEN",
        &[],
        Some("0.0.0.0:9090"),
        "address `floodgate worker` serves /health, /ready and /metrics on (`--listen` on `worker`)",
    ),
    s(
        "FLOODGATE_NODE_ID",
        &[],
        None,
        "name of this node in metrics, logs and reply routing (default: host-pid)",
    ),
    s(
        "FLOODGATE_REDIS_URL",
        &["REDIS_URL"],
        None,
        "Redis URL (`redis+cluster://h:p,h:p` or several URLs: Redis Cluster); unset = in-memory store",
    ),
    s(
        "FLOODGATE_KAFKA_BROKERS",
        &["KAFKA_BROKERS", "KAFKA_BOOTSTRAP_SERVERS"],
        None,
        "Kafka bootstrap servers; unset = in-process bus",
    ),
    s(
        "FLOODGATE_KAFKA_SESSION_TIMEOUT_MS",
        &[],
        Some("8000"),
        "consumer-group session: a member killed -9 holds its partitions this long",
    ),
    s(
        "FLOODGATE_KAFKA_PARTITIONS",
        &["KAFKA_PARTITIONS"],
        Some("8"),
        "partitions of each topic floodgate creates; a topic that exists keeps its own",
    ),
    s(
        "FLOODGATE_KAFKA_FETCH_WAIT_MS",
        &[],
        Some("10"),
        "longest a consumer fetch waits for data (`fetch.wait.max.ms`): Tansu holds each fetch this long, Apache Kafka answers when data arrives (see Broker tuning)",
    ),
    s(
        "FLOODGATE_KAFKA_REPLY_RETENTION_MS",
        &[],
        Some("3600000"),
        "`retention.ms` of the gift-code request and reply topics floodgate creates (`tasks`, `results`, `results.N`); 0 = the broker's default",
    ),
    s(
        "FLOODGATE_DATABASE_URL",
        &["DATABASE_URL"],
        Some(floodgate_db::DEFAULT_SQLITE_URL),
        "postgres:// or sqlite:// URL (SQLite: embedded, one machine)",
    ),
    s(
        "FLOODGATE_MAX_CONNECTIONS",
        &[],
        Some("20000"),
        "open client connections at most",
    ),
    s(
        "FLOODGATE_HEADER_TIMEOUT_MS",
        &[],
        Some("10000"),
        "time a client has to send request headers, from their first byte",
    ),
    s(
        "FLOODGATE_BODY_TIMEOUT_MS",
        &[],
        Some("30000"),
        "time a client has to send a request body once its headers are in (408 and close after)",
    ),
    s(
        "FLOODGATE_IDLE_TIMEOUT_MS",
        &[],
        Some("60000"),
        "keep-alive connection closed after this much silence",
    ),
    s(
        "FLOODGATE_SHUTDOWN_TIMEOUT_MS",
        &[],
        Some("30000"),
        "drain time on SIGTERM before exit",
    ),
    s(
        "FLOODGATE_BODY_LIMIT_BYTES",
        &[],
        Some("65536"),
        "request bodies above this get 413",
    ),
    s("FLOODGATE_LOG_FORMAT", &[], Some("json"), "json | text"),
    s(
        "FLOODGATE_METRICS",
        &[],
        Some("on"),
        "on | off: off drops request metrics, /metrics and the dashboard's counters",
    ),
    s("RUST_LOG", &[], Some("info"), "log filter"),
    s(
        "FLOODGATE_WORKERS",
        &[],
        Some("giftcodes,primes,todos"),
        "which service workers serve/worker run (comma-separated; empty = none)",
    ),
    s(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &[],
        None,
        "OTLP/HTTP base URL (e.g. http://collector:4318); set → spans are exported",
    ),
    s(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        &[],
        Some("http/protobuf"),
        "http/protobuf | http/json",
    ),
    s(
        "OTEL_SERVICE_NAME",
        &[],
        Some("floodgate"),
        "service name on exported spans",
    ),
    secret(
        "JWT_SECRET",
        &["FLOODGATE_JWT_SECRET"],
        "HS256 secret for todo writes; with every backend embedded, generated into data/dev-secrets.env when unset",
    ),
    s(
        "RATE_LIMIT_CAPACITY",
        &["FLOODGATE_RATE_LIMIT_CAPACITY"],
        Some("100"),
        "/queue requests in flight across the cluster",
    ),
    s(
        "ADMISSION_WAIT_MS",
        &["FLOODGATE_ADMISSION_WAIT_MS"],
        Some("0"),
        "how long /queue may wait for a slot before 429",
    ),
    s(
        "KAFKA_GIFT_CODE_TIMEOUT",
        &["FLOODGATE_GIFT_CODE_TIMEOUT"],
        Some("10"),
        "seconds to wait for a gift-code reply (504 after)",
    ),
    s("TASKS_TOPIC", &[], Some("tasks"), "gift-code request topic"),
    s(
        "RESULTS_TOPIC",
        &[],
        Some("results"),
        "gift-code reply topic",
    ),
    s(
        "PRIMES_TOPIC",
        &["FLOODGATE_PRIMES_TOPIC"],
        Some("prime-jobs"),
        "prime job topic",
    ),
    s(
        "PRIMES_MAX_N",
        &["FLOODGATE_PRIMES_MAX_N"],
        Some("1000000"),
        "largest n accepted by /generate",
    ),
    s(
        "PRIMES_MAX_QUEUED",
        &["FLOODGATE_PRIMES_MAX_QUEUED"],
        Some("10000"),
        "unfinished prime jobs across the cluster before /generate answers 503",
    ),
    s(
        "PRIMES_RESULT_TTL_SECONDS",
        &["FLOODGATE_PRIMES_RESULT_TTL_SECONDS"],
        Some("86400"),
        "how long job results live",
    ),
    s(
        "KAFKA_TODO_TOPIC",
        &[],
        Some("todo-commands"),
        "todo command topic",
    ),
    s(
        "CACHE_TTL_SEC",
        &[],
        Some("300"),
        "todo list cache entry lifetime",
    ),
    s(
        "CACHE_STALENESS_MS",
        &["FLOODGATE_CACHE_STALENESS_MS"],
        Some("100"),
        "longest a node serves an old todo list after a write",
    ),
    s(
        "TODOS_MAX_LIMIT",
        &["FLOODGATE_TODOS_MAX_LIMIT"],
        Some("10000"),
        "largest list /todos returns",
    ),
    secret(
        "ABACUS_API_KEYS",
        &[],
        "comma-separated API keys for /abacus; with every backend embedded, generated into data/dev-secrets.env when unset",
    ),
    s(
        "ABACUS_AUTH_ENABLED",
        &[],
        Some("true"),
        "require X-API-Key on /abacus",
    ),
    s(
        "ABACUS_RATE_LIMIT_ENABLED",
        &[],
        Some("true"),
        "rate-limit /abacus per API key",
    ),
    s(
        "ABACUS_RATE_LIMIT_REQUESTS",
        &[],
        Some("600"),
        "requests per window per API key",
    ),
    s(
        "ABACUS_RATE_LIMIT_WINDOW_SECONDS",
        &[],
        Some("60"),
        "rate-limit window",
    ),
    s(
        "ABACUS_IDEMPOTENCY_REQUIRED",
        &[],
        Some("true"),
        "POST /abacus/number requires Idempotency-Key",
    ),
    s(
        "IDEMPOTENCY_TTL_SECONDS",
        &["ABACUS_IDEMPOTENCY_TTL_SECONDS"],
        Some("86400"),
        "how long idempotency records live",
    ),
];

pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS
        .iter()
        .find(|s| s.name == name || s.aliases.contains(&name))
}
