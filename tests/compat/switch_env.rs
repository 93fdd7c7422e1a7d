//! Switching over (issue 22): floodgate started on each seed's own `.env`. Every name in the
//! seeds' configuration files is honoured or named in one start-up line; spellings of one
//! setting that disagree stop start-up with exit code 2.

use super::*;

/// Seed 000's `.env.example`, verbatim but for the broker and Redis addresses.
pub fn seed_000_env(kafka: &str, redis: &str) -> String {
    format!(
        "# Kafka Configuration
KAFKA_BOOTSTRAP_SERVERS={kafka}
TASKS_TOPIC=tasks
RESULTS_TOPIC=results

# Docker Compose Internal Addresses
KAFKA_BOOTSTRAP_SERVERS_INTERNAL=kafka:9092
REDIS_URL_INTERNAL=redis://redis:6379/0

# Kafka Broker Internal Configuration (for Docker Compose)
KAFKA_NODE_ID=1
KAFKA_PROCESS_ROLES=broker,controller
KAFKA_LISTENERS=PLAINTEXT://:9092,CONTROLLER://:9093,EXTERNAL://:9094
KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://kafka:9092,EXTERNAL://localhost:9094
KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER
KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT
KAFKA_CONTROLLER_QUORUM_VOTERS=1@kafka:9093
KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1
KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=1
KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1
KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0
KAFKA_LOG_DIRS=/var/lib/kafka/data

# Redis Configuration
REDIS_URL={redis}

# Rate Limiting Configuration
RATE_LIMIT_CAPACITY=100
MAX_QUEUE_SIZE=500

# Server Configuration
PORT=8000
HOST=0.0.0.0
WORKERS=4

# Benchmark Configuration
BENCHMARK_PORT=8001
NUM_REQUESTS=2000
CONCURRENCY=100
"
    )
}

/// Seed 003's `docker/.env.example` with its optional lines set, plus the settings its
/// `internal/config/config.go` reads.
pub fn seed_003_env(database: &str, redis: &str, kafka: &str, topic: &str) -> String {
    format!(
        "DATABASE_URL={database}
REDIS_URL={redis}
KAFKA_BROKERS={kafka}
JWT_SECRET=compat-secret
HTTP_PORT=8080
CACHE_TTL_SEC=300
KAFKA_TODO_TOPIC={topic}
KAFKA_PARTITIONS=32
DB_POOL_SIZE=5000
REDIS_POOL_SIZE=5000
WORKER_POOL_SIZE=128
"
    )
}

/// Seed 004's settings as `src/storage.py` and `src/security.py` read them (its
/// docker-compose.yml sets these, and REDIS_URL besides, which storage.py never reads).
pub fn seed_004_env(redis_port: u16) -> String {
    format!(
        "REDIS_HOST=127.0.0.1
REDIS_PORT={redis_port}
REDIS_MAX_OPERATION_ATTEMPTS=3
REDIS_BACKOFF_BASE_SECONDS=0.05
REDIS_BACKOFF_CAP_SECONDS=0.5
REDIS_HEALTH_CHECK_INTERVAL=30
ABACUS_AUTH_ENABLED=true
ABACUS_API_KEYS=local-dev-key
ABACUS_RATE_LIMIT_ENABLED=true
ABACUS_RATE_LIMIT_REQUESTS=600
ABACUS_RATE_LIMIT_WINDOW_SECONDS=60
"
    )
}

/// Every name the seeds' own configuration code and files read.
const SEED_NAMES: &[&str] = &[
    // 000: core/config.py and .env.example.
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_GIFT_CODE_TIMEOUT",
    "TASKS_TOPIC",
    "RESULTS_TOPIC",
    "REDIS_URL",
    "RATE_LIMIT_CAPACITY",
    "MAX_QUEUE_SIZE",
    "WORKER_CONCURRENCY",
    "PORT",
    "HOST",
    "WORKERS",
    "GUNICORN_LOG_LEVEL",
    "GUNICORN_KEEPALIVE",
    "BENCHMARK_PORT",
    "NUM_REQUESTS",
    "CONCURRENCY",
    "KAFKA_BOOTSTRAP_SERVERS_INTERNAL",
    "REDIS_URL_INTERNAL",
    "KAFKA_NODE_ID",
    "KAFKA_PROCESS_ROLES",
    "KAFKA_LISTENERS",
    "KAFKA_ADVERTISED_LISTENERS",
    "KAFKA_CONTROLLER_LISTENER_NAMES",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    "KAFKA_CONTROLLER_QUORUM_VOTERS",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS",
    "KAFKA_LOG_DIRS",
    // 003: internal/config/config.go.
    "HTTP_PORT",
    "DATABASE_URL",
    "DB_POOL_SIZE",
    "REDIS_POOL_SIZE",
    "CACHE_TTL_SEC",
    "KAFKA_BROKERS",
    "KAFKA_TODO_TOPIC",
    "KAFKA_PARTITIONS",
    "WORKER_POOL_SIZE",
    "JWT_SECRET",
    // 004: src/storage.py, src/security.py, docker-compose.yml.
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_SOCKET_CONNECT_TIMEOUT",
    "REDIS_SOCKET_TIMEOUT",
    "REDIS_HEALTH_CHECK_INTERVAL",
    "REDIS_MAX_OPERATION_ATTEMPTS",
    "REDIS_BACKOFF_BASE_SECONDS",
    "REDIS_BACKOFF_CAP_SECONDS",
    "ABACUS_SUM_BACKUP_TTL_SECONDS",
    "ABACUS_DATA_DIR",
    "ABACUS_BACKUP_FILE_PATH",
    "ABACUS_API_KEYS",
    "ABACUS_AUTH_ENABLED",
    "ABACUS_RATE_LIMIT_ENABLED",
    "ABACUS_RATE_LIMIT_REQUESTS",
    "ABACUS_RATE_LIMIT_WINDOW_SECONDS",
];

#[test]
fn every_seed_setting_name_is_honoured_or_warned_about() {
    let schema = floodgate::settings::schema();
    let silent: Vec<_> = SEED_NAMES.iter().filter(|n| !schema.knows(n)).collect();
    assert!(
        silent.is_empty(),
        "read by a seed, unknown to floodgate: {silent:?}"
    );
    // And each ignored name is one line naming it.
    let dir = TempDir::new();
    let ignored: Vec<_> = schema.ignored().collect();
    let text: String = ignored.iter().map(|(n, _)| format!("{n}=1\n")).collect();
    let (cfg, _) = seed_env(&dir, &text).expect("loads");
    assert_eq!(cfg.ignored_settings.len(), ignored.len());
    for (line, (name, _)) in cfg.ignored_settings.iter().zip(ignored) {
        assert!(line.contains(&format!("seed setting {name} ")), "{line}");
    }
}

#[test]
fn seed_000_env_reads_with_the_seeds_meaning() {
    let dir = TempDir::new();
    let (cfg, r) = seed_env(&dir, &seed_000_env("k:9094", "redis://r:6379/0")).expect("loads");
    assert_eq!(cfg.listen.to_string(), "0.0.0.0:8000");
    assert_eq!(r.set_by("FLOODGATE_LISTEN"), Some("HOST+PORT"));
    assert_eq!(cfg.kafka_brokers.as_deref(), Some("k:9094"));
    assert_eq!(
        r.set_by("FLOODGATE_KAFKA_BROKERS"),
        Some("KAFKA_BOOTSTRAP_SERVERS")
    );
    assert_eq!(cfg.redis_url.as_deref(), Some("redis://r:6379/0"));
    assert_eq!(
        (
            cfg.settings::<floodgate_giftcodes::Settings>()
                .tasks_topic
                .as_str(),
            cfg.settings::<floodgate_giftcodes::Settings>()
                .results_topic
                .as_str(),
        ),
        ("tasks", "results")
    );
    assert_eq!(
        cfg.settings::<floodgate_giftcodes::Settings>()
            .rate_limit_capacity,
        100
    );
    for name in [
        "WORKERS",
        "MAX_QUEUE_SIZE",
        "BENCHMARK_PORT",
        "KAFKA_NODE_ID",
        "REDIS_URL_INTERNAL",
    ] {
        assert!(
            ignored(&cfg, name),
            "{name} not reported: {:?}",
            cfg.ignored_settings
        );
    }
}

#[test]
fn seed_003_env_reads_with_the_seeds_meaning() {
    let dir = TempDir::new();
    let text = seed_003_env(
        "postgres://app:appsecret@db:5432/million_rps?sslmode=disable",
        "redis://r:6379/0",
        "k:9092",
        "todo-commands",
    );
    let (cfg, r) = seed_env(&dir, &text).expect("loads");
    assert_eq!(cfg.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(r.set_by("FLOODGATE_LISTEN"), Some("HTTP_PORT"));
    assert!(cfg
        .database_url
        .as_deref()
        .unwrap()
        .starts_with("postgres://app:appsecret@db"));
    assert_eq!(cfg.kafka_brokers.as_deref(), Some("k:9092"));
    assert_eq!(
        cfg.settings::<floodgate_todos::Settings>().topic,
        "todo-commands"
    );
    // Topics floodgate creates get the seed's partition count.
    assert_eq!(cfg.kafka_partitions, 32);
    assert_eq!(
        r.set_by("FLOODGATE_KAFKA_PARTITIONS"),
        Some("KAFKA_PARTITIONS")
    );
    for name in ["DB_POOL_SIZE", "REDIS_POOL_SIZE", "WORKER_POOL_SIZE"] {
        assert!(ignored(&cfg, name), "{name}: {:?}", cfg.ignored_settings);
    }
}

#[test]
fn seed_004_env_selects_redis_not_the_memory_store() {
    let dir = TempDir::new();
    let (cfg, r) = seed_env(&dir, &seed_004_env(6390)).expect("loads");
    assert_eq!(cfg.redis_url.as_deref(), Some("redis://127.0.0.1:6390/0"));
    assert_eq!(
        r.set_by("FLOODGATE_REDIS_URL"),
        Some("REDIS_HOST+REDIS_PORT")
    );
    assert_eq!(
        cfg.settings::<floodgate_abacus::Settings>()
            .rate_limit_requests,
        600
    );
    assert!(ignored(&cfg, "REDIS_MAX_OPERATION_ATTEMPTS"));
    // The compose file's REDIS_URL agrees: kept, no conflict.
    let text = format!("REDIS_URL=redis://127.0.0.1:6390/0\n{}", seed_004_env(6390));
    let (cfg, _) = seed_env(&dir, &text).expect("agreeing spellings load");
    assert_eq!(cfg.redis_url.as_deref(), Some("redis://127.0.0.1:6390/0"));
}

/// `serve --print-config --env-file` on each seed's file: every value says where it came
/// from, seed spellings by name.
#[test]
fn print_config_on_each_seed_env_names_every_source() {
    let dir = TempDir::new();
    let files = [
        ("000.env", seed_000_env("k:9094", "redis://r:6379/0")),
        (
            "003.env",
            seed_003_env(
                "postgres://app:appsecret@db:5432/m",
                "redis://r:6379/0",
                "k:9092",
                "todo-commands",
            ),
        ),
        ("004.env", seed_004_env(6379)),
    ];
    let expect: &[(&str, &[(&str, &str)])] = &[
        (
            "000.env",
            &[
                ("FLOODGATE_LISTEN", "# .env as HOST+PORT"),
                (
                    "FLOODGATE_KAFKA_BROKERS",
                    "# .env as KAFKA_BOOTSTRAP_SERVERS",
                ),
                ("RATE_LIMIT_CAPACITY", "# .env"),
            ],
        ),
        (
            "003.env",
            &[
                ("FLOODGATE_LISTEN", "# .env as HTTP_PORT"),
                ("FLOODGATE_DATABASE_URL", "# .env as DATABASE_URL"),
                ("JWT_SECRET", "# .env"),
            ],
        ),
        (
            "004.env",
            &[
                ("FLOODGATE_REDIS_URL", "# .env as REDIS_HOST+REDIS_PORT"),
                ("ABACUS_API_KEYS", "# .env"),
            ],
        ),
    ];
    for ((file, text), (_, lines)) in files.iter().zip(expect) {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let out = binary_unconfigured()
            .current_dir(dir.path())
            .args(["serve", "--print-config", "--env-file"])
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (name, source) in *lines {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("{name} =")))
                .unwrap_or("");
            assert!(line.ends_with(source), "{file}: {name}: {line:?}\n{stdout}");
        }
        // Every setting line names its source; every ignored name is a comment line.
        for line in stdout.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.contains("  # ") || line.ends_with("(unset)"),
                "{file}: {line}"
            );
        }
        assert!(!stdout.contains("appsecret"), "{file}: password shown");
    }
}

/// Disagreeing spellings: exit code 2 and one line naming both.
#[test]
fn conflicting_spellings_stop_start_up() {
    let dir = TempDir::new();
    let cases = [
        (
            "REDIS_URL=redis://a:6379/0\nREDIS_HOST=b\n",
            ["REDIS_URL", "REDIS_HOST"],
        ),
        (
            "PORT=8000\nFLOODGATE_LISTEN=0.0.0.0:8080\n",
            ["PORT", "FLOODGATE_LISTEN"],
        ),
        ("PORT=8000\nHTTP_PORT=8080\n", ["PORT", "HTTP_PORT"]),
    ];
    for (text, names) in cases {
        let path = dir.path().join("conflict.env");
        std::fs::write(&path, text).unwrap();
        let out = binary_unconfigured()
            .current_dir(dir.path())
            .args(["serve", "--env-file"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        for n in names {
            assert!(err.contains(n), "{text}: {err}");
        }
    }
}

/// A node started on seed 000's `.env` (its broker and Redis): `POST /queue` is answered
/// by floodgate's worker on the seed's topics, admitted by the seed's capacity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_on_seed_000_env_answers_the_queue() {
    let dir = TempDir::new();
    let Some(broker) = tansu(&dir) else { return };
    let Some(redis) = redis() else { return };
    let text = seed_000_env(&format!("127.0.0.1:{}", broker.port), &redis.redis_url());
    let (cfg, _) = seed_env(&dir, &text).expect("seed 000 env loads");
    let node = started(on_test_port(cfg, &dir)).await;
    assert_eq!(node.ctx.backends.store.kind(), "redis");
    assert_eq!(node.ctx.backends.bus.kind(), "kafka");
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let queue = url(&node, "/queue");
    let answered = eventually(std::time::Duration::from_secs(90), || async {
        http.post(&queue)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(answered, "no gift code on the seed's environment");
    let v = send_json(http.post(&queue)).await;
    assert!(
        v["gift_code"].as_str().unwrap_or("").starts_with("GIFT-"),
        "{v}"
    );
    stop_any(node).await;
}

/// Whether the setting `name` is among those reported as ignored.
fn ignored(cfg: &floodgate_core::Config, name: &str) -> bool {
    let word = format!(" {name} ");
    cfg.ignored_settings.iter().any(|l| l.contains(&word))
}
