//! The loader with the binary's schema (core and every service): layers, aliases, seed
//! names, bad values; the docs table; zero-setup secrets.

use std::collections::HashMap;
use std::time::Duration;

use floodgate_core::config::{ConfigError, Layer, Resolved, Source, Workers};
use floodgate_core::Config;

use super::schema;

type GiftCodes = floodgate_giftcodes::Settings;
type Todos = floodgate_todos::Settings;
type Abacus = floodgate_abacus::Settings;

fn resolve(layers: &[Layer]) -> Result<Resolved, ConfigError> {
    schema().resolve(layers)
}

fn from_resolved(r: &Resolved) -> Result<Config, ConfigError> {
    schema().config(r)
}

#[test]
fn later_layers_win() {
    let layers = [
        Layer::of(
            Source::File,
            &[("RATE_LIMIT_CAPACITY", "10"), ("CACHE_TTL_SEC", "7")],
        ),
        Layer::of(
            Source::DotEnv,
            &[("RATE_LIMIT_CAPACITY", "20"), ("TASKS_TOPIC", "t-env")],
        ),
        Layer::of(Source::Env, &[("RATE_LIMIT_CAPACITY", "30")]),
        Layer::of(Source::Flag, &[("TASKS_TOPIC", "t-flag")]),
    ];
    let r = resolve(&layers).unwrap();
    assert_eq!(r.get("RATE_LIMIT_CAPACITY"), Some("30"));
    assert_eq!(r.source("RATE_LIMIT_CAPACITY"), Some(Source::Env));
    assert_eq!(r.get("CACHE_TTL_SEC"), Some("7"));
    assert_eq!(r.get("TASKS_TOPIC"), Some("t-flag"));
    assert_eq!(r.get("RESULTS_TOPIC"), Some("results"));
    assert_eq!(r.source("RESULTS_TOPIC"), Some(Source::Default));
    let c = from_resolved(&r).unwrap();
    assert_eq!(c.settings::<GiftCodes>().rate_limit_capacity, 30);
    assert_eq!(c.settings::<Todos>().cache_ttl, Duration::from_secs(7));
}

#[test]
fn seed_names_are_aliases_and_the_canonical_name_wins_within_a_layer() {
    let r = resolve(&[Layer::of(
        Source::Env,
        &[("KAFKA_BOOTSTRAP_SERVERS", "k1:9092")],
    )])
    .unwrap();
    assert_eq!(
        from_resolved(&r).unwrap().kafka_brokers.as_deref(),
        Some("k1:9092")
    );
    let r = resolve(&[Layer::of(
        Source::Env,
        &[
            ("REDIS_URL", "redis://alias:1/0"),
            ("FLOODGATE_REDIS_URL", "redis://canon:1/0"),
        ],
    )])
    .unwrap();
    assert_eq!(
        from_resolved(&r).unwrap().redis_url.as_deref(),
        Some("redis://canon:1/0")
    );
    // An alias in a higher layer still beats the canonical name in a lower one.
    let r = resolve(&[
        Layer::of(Source::File, &[("FLOODGATE_REDIS_URL", "redis://file:1/0")]),
        Layer::of(Source::Env, &[("REDIS_URL", "redis://env:1/0")]),
    ])
    .unwrap();
    assert_eq!(
        from_resolved(&r).unwrap().redis_url.as_deref(),
        Some("redis://env:1/0")
    );
}

#[test]
fn bad_values_name_the_setting() {
    let cases: HashMap<&str, &str> = [
        ("RATE_LIMIT_CAPACITY", "0"),
        ("FLOODGATE_LISTEN", "nowhere"),
        ("ABACUS_AUTH_ENABLED", "maybe"),
        ("KAFKA_GIFT_CODE_TIMEOUT", "-1"),
        ("FLOODGATE_DATABASE_URL", "mysql://x"),
        ("FLOODGATE_REDIS_URL", "localhost:6379"),
        ("FLOODGATE_KAFKA_PARTITIONS", "0"),
        ("KAFKA_PARTITIONS", "10001"),
        ("FLOODGATE_KAFKA_FETCH_WAIT_MS", "0"),
        ("FLOODGATE_KAFKA_REPLY_RETENTION_MS", "an hour"),
    ]
    .into_iter()
    .collect();
    for (name, value) in cases {
        let r = resolve(&[Layer::of(Source::Env, &[(name, value)])]).unwrap();
        let err = from_resolved(&r).expect_err(name).to_string();
        let shown = schema().find(name).unwrap();
        assert!(
            err.contains(name) || shown.aliases.iter().any(|a| err.contains(a)),
            "{name}: {err}"
        );
    }
}

/// The start-up check takes exactly the URLs the store connects to (docs/operations.md,
/// "Redis Cluster"): a cluster URL was once refused there, and `rediss://` (the client is
/// built without TLS) accepted, to fail on every call after.
#[test]
fn every_store_url_form_is_accepted() {
    let r = resolve(&[Layer::of(Source::Env, &[("REDIS_URL", "rediss://c:6380")])]).unwrap();
    assert!(from_resolved(&r).is_err());
    for url in [
        "redis://127.0.0.1:6379/0",
        "unix:///run/redis.sock",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "redis://a:7000, redis://b:7001",
    ] {
        let r = resolve(&[Layer::of(Source::Env, &[("REDIS_URL", url)])]).unwrap();
        let c = from_resolved(&r).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(c.redis_url.as_deref(), Some(url));
    }
}

#[test]
fn defaults_are_valid_and_embedded() {
    let c = super::defaults();
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert!(c.redis_url.is_none() && c.kafka_brokers.is_none());
    assert_eq!(
        c.database_url.as_deref(),
        Some("sqlite://data/floodgate.db")
    );
    assert_eq!(c.worker_listen.to_string(), "0.0.0.0:9090");
    assert_eq!(c.shared_backend(), None);
    assert_eq!(c.settings::<GiftCodes>().rate_limit_capacity, 100);
    assert_eq!(c.settings::<GiftCodes>().timeout, Duration::from_secs(10));
    assert_eq!(c.body_limit, 64 * 1024);
    assert_eq!(c.kafka_partitions, 8);
    assert_eq!(c.kafka_fetch_wait, Duration::from_millis(10));
    assert_eq!(
        c.settings::<GiftCodes>().reply_retention,
        Some(Duration::from_secs(3600))
    );
}

#[test]
fn reply_retention_zero_leaves_the_broker_default() {
    let r = resolve(&[Layer::of(
        Source::Env,
        &[
            ("FLOODGATE_KAFKA_REPLY_RETENTION_MS", "0"),
            ("FLOODGATE_KAFKA_FETCH_WAIT_MS", "250"),
        ],
    )])
    .unwrap();
    let c = from_resolved(&r).unwrap();
    assert_eq!(c.settings::<GiftCodes>().reply_retention, None);
    assert_eq!(c.kafka_fetch_wait, Duration::from_millis(250));
}

#[test]
fn render_redacts_secrets_and_url_passwords() {
    let r = resolve(&[Layer::of(
        Source::Env,
        &[
            ("JWT_SECRET", "hunter2"),
            ("ABACUS_API_KEYS", "k1,k2"),
            ("DATABASE_URL", "postgres://app:appsecret@db:5432/x"),
        ],
    )])
    .unwrap();
    let text = r.render();
    assert!(
        !text.contains("hunter2") && !text.contains("k1,k2") && !text.contains("appsecret"),
        "{text}"
    );
    assert!(text.contains("postgres://app:***@db:5432/x"), "{text}");
    let c = from_resolved(&r).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(c.settings::<Abacus>().api_keys.len(), 2);
}

#[test]
fn toml_accepts_short_names_and_rejects_typos() {
    let dir = std::env::temp_dir().join(format!("fg-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:9\"\nrate_limit_capacity = 5\nABACUS_AUTH_ENABLED = false\n",
    )
    .unwrap();
    let pairs = schema().read_toml(&good).unwrap();
    let r = resolve(&[Layer::new(Source::File, pairs)]).unwrap();
    let c = from_resolved(&r).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9");
    assert_eq!(c.settings::<GiftCodes>().rate_limit_capacity, 5);
    assert!(!c.settings::<Abacus>().auth_enabled);
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "rate_limit_capacty = 5\n").unwrap();
    let err = schema().read_toml(&bad).unwrap_err().to_string();
    assert!(err.contains("rate_limit_capacty"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn workers_setting_picks_services_and_rejects_unknown_names() {
    let workers = |v: &str| {
        let r = resolve(&[Layer::of(Source::Flag, &[("FLOODGATE_WORKERS", v)])]).unwrap();
        from_resolved(&r).map(|c| c.workers)
    };
    assert_eq!(super::defaults().workers, Workers::All);
    let w = workers("primes, todos").unwrap();
    let runs = ["giftcodes", "primes", "todos"].map(|n| w.runs(n));
    assert_eq!(runs, [false, true, true]);
    assert_eq!(workers("").unwrap(), Workers::NONE);
    let err = workers("primes,gifts").unwrap_err().to_string();
    assert!(
        err.contains("FLOODGATE_WORKERS") && err.contains("gifts"),
        "{err}"
    );
}

#[test]
fn seed_listen_names_set_the_address_and_say_so() {
    let listen = |pairs: &[(&str, &str)]| {
        let r = resolve(&[Layer::of(Source::DotEnv, pairs)]).unwrap();
        let c = from_resolved(&r).unwrap();
        (
            c.listen.to_string(),
            r.set_by("FLOODGATE_LISTEN").unwrap().to_string(),
        )
    };
    assert_eq!(
        listen(&[("PORT", "8000"), ("HOST", "127.0.0.1")]),
        ("127.0.0.1:8000".to_string(), "HOST+PORT".to_string())
    );
    assert_eq!(listen(&[("PORT", "8001")]).0, "0.0.0.0:8001");
    assert_eq!(listen(&[("HOST", "::1")]).0, "[::1]:8080");
    assert_eq!(
        listen(&[("HTTP_PORT", "9000")]),
        ("0.0.0.0:9000".to_string(), "HTTP_PORT".to_string())
    );
    // The same address twice is no conflict.
    assert_eq!(
        listen(&[("PORT", "9000"), ("HTTP_PORT", "9000")]).0,
        "0.0.0.0:9000"
    );
    let r = resolve(&[Layer::of(Source::DotEnv, &[("PORT", "8000")])]).unwrap();
    assert!(r.render().contains("# .env as PORT"), "{}", r.render());
}

#[test]
fn seed_redis_host_and_port_select_redis() {
    let r = resolve(&[Layer::of(
        Source::Env,
        &[("REDIS_HOST", "cache.internal"), ("REDIS_PORT", "6380")],
    )])
    .unwrap();
    let c = from_resolved(&r).unwrap();
    assert_eq!(
        c.redis_url.as_deref(),
        Some("redis://cache.internal:6380/0")
    );
    assert_eq!(c.shared_backend(), Some("REDIS_URL"));
    assert_eq!(
        r.set_by("FLOODGATE_REDIS_URL"),
        Some("REDIS_HOST+REDIS_PORT")
    );
    // The port alone means localhost, as redis-py's default host.
    let r = resolve(&[Layer::of(Source::Env, &[("REDIS_PORT", "7000")])]).unwrap();
    assert_eq!(
        r.get("FLOODGATE_REDIS_URL"),
        Some("redis://localhost:7000/0")
    );
    // Seed 004's compose file sets both spellings, agreeing: the URL is kept.
    let r = resolve(&[Layer::of(
        Source::Env,
        &[
            ("REDIS_URL", "redis://redis:6379/0"),
            ("REDIS_HOST", "redis"),
            ("REDIS_PORT", "6379"),
        ],
    )])
    .unwrap();
    assert_eq!(r.get("FLOODGATE_REDIS_URL"), Some("redis://redis:6379/0"));
    assert_eq!(r.set_by("FLOODGATE_REDIS_URL"), Some("REDIS_URL"));
}

#[test]
fn disagreeing_spellings_stop_with_one_line_naming_both() {
    let cases: &[&[(&str, &str)]] = &[
        &[("REDIS_URL", "redis://a:6379/0"), ("REDIS_HOST", "b")],
        &[("REDIS_URL", "redis://a:6379/0"), ("REDIS_PORT", "6380")],
        // The seed's data is in database 0.
        &[("REDIS_URL", "redis://a:6379/2"), ("REDIS_HOST", "a")],
        &[("FLOODGATE_LISTEN", "0.0.0.0:8080"), ("PORT", "8000")],
        &[("PORT", "8000"), ("HTTP_PORT", "8080")],
    ];
    for pairs in cases {
        let err = resolve(&[Layer::of(Source::DotEnv, pairs)])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("conflicting settings"), "{pairs:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        for (name, _) in *pairs {
            assert!(err.contains(name), "{pairs:?}: {err}");
        }
    }
    // Across layers too: the environment's URL against the .env's host.
    let err = resolve(&[
        Layer::of(Source::DotEnv, &[("REDIS_HOST", "b")]),
        Layer::of(Source::Env, &[("REDIS_URL", "redis://a:6379/0")]),
    ])
    .unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
    // A flag overrides both without a conflict.
    let r = resolve(&[
        Layer::of(Source::DotEnv, &[("PORT", "8000")]),
        Layer::of(Source::Flag, &[("FLOODGATE_LISTEN", "127.0.0.1:0")]),
    ])
    .unwrap();
    assert_eq!(r.get("FLOODGATE_LISTEN"), Some("127.0.0.1:0"));
}

#[test]
fn bad_seed_values_name_the_seed_setting() {
    for (name, value) in [("PORT", "eighty"), ("HOST", "my-host"), ("REDIS_PORT", "x")] {
        let err = resolve(&[Layer::of(Source::DotEnv, &[(name, value)])])
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{name}: {err}");
    }
}

#[test]
fn ignored_seed_settings_are_listed_once_each() {
    let r = resolve(&[
        Layer::of(
            Source::DotEnv,
            &[("WORKERS", "4"), ("DB_POOL_SIZE", "5000")],
        ),
        Layer::of(Source::Env, &[("WORKERS", "8")]),
    ])
    .unwrap();
    assert_eq!(r.ignored.len(), 2, "{:?}", r.ignored);
    assert!(r
        .ignored
        .iter()
        .any(|l| l.contains("WORKERS") && l.contains("environment")));
    assert!(r.ignored.iter().any(|l| l.contains("DB_POOL_SIZE")));
    assert!(r.render().contains("# ignoring seed setting DB_POOL_SIZE"));
    assert_eq!(from_resolved(&r).unwrap().ignored_settings, r.ignored);
}

#[test]
fn operations_doc_lists_exactly_the_settings_in_the_code() {
    use floodgate_core::config::reference::{markdown_table, BEGIN, END};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md");
    let doc = std::fs::read_to_string(path).expect("docs/operations.md exists");
    let start = doc.find(BEGIN).expect("settings:begin marker") + BEGIN.len();
    let end = doc.find(END).expect("settings:end marker");
    let in_doc = doc[start..end].trim();
    let expected = markdown_table(&schema());
    assert_eq!(
        in_doc,
        expected.trim(),
        "docs/operations.md is out of date; replace the table between the markers with:\n{expected}"
    );
}

/// Zero-setup secrets (`floodgate_core::config::dev_secrets`) with the services that have
/// secrets: todos' JWT_SECRET and abacus' ABACUS_API_KEYS.
mod dev_secrets {
    use std::path::{Path, PathBuf};

    use floodgate_core::config::dev_secrets::{fill, stored_secret, FILE_NAME};
    use floodgate_core::config::Secret;
    use floodgate_core::Config;

    use super::{Abacus, Todos};

    const JWT: &str = floodgate_todos::settings::JWT_SECRET;
    const API_KEYS: &str = floodgate_abacus::settings::ABACUS_API_KEYS;

    fn embedded(dir: &Path) -> Config {
        let mut c = super::super::defaults();
        c.database_url = Some(format!("sqlite://{}/fg.db", dir.display()));
        c
    }

    fn temp_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("fg-dev-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn generates_once_with_mode_0600_and_reuses() {
        let dir = temp_dir();
        let mut first = embedded(&dir);
        let made = fill(&mut first).unwrap().expect("generated");
        assert_eq!(made.generated, vec![JWT, API_KEYS]);
        assert_eq!(made.path, dir.join(FILE_NAME));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&made.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut second = embedded(&dir);
        let again = fill(&mut second).unwrap().expect("read back");
        assert!(again.generated.is_empty());
        let key = stored_secret(&again.path, API_KEYS).expect("key stored");
        assert_eq!(second.settings::<Abacus>().api_keys[0].expose(), key);
        assert_eq!(
            first.settings::<Todos>().jwt_secret,
            second.settings::<Todos>().jwt_secret
        );
        assert_eq!(
            first.settings::<Abacus>().api_keys,
            second.settings::<Abacus>().api_keys
        );
        assert_eq!(
            first
                .settings::<Todos>()
                .jwt_secret
                .clone()
                .unwrap()
                .expose()
                .len(),
            64
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn configured_secrets_are_kept_and_only_the_missing_one_is_generated() {
        let dir = temp_dir();
        let mut c = embedded(&dir);
        c.settings_mut::<Todos>().jwt_secret = Some(Secret::new("mine"));
        let made = fill(&mut c).unwrap().expect("api key generated");
        assert_eq!(made.generated, vec![API_KEYS]);
        assert_eq!(
            c.settings::<Todos>().jwt_secret.as_ref().unwrap().expose(),
            "mine"
        );
        assert_eq!(c.settings::<Abacus>().api_keys.len(), 1);
        let text = std::fs::read_to_string(made.path).unwrap();
        assert!(!text.contains("JWT_SECRET="), "{text}");
        c.settings_mut::<Abacus>().api_keys = vec![Secret::new("k")];
        assert!(fill(&mut c).unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_shared_backend_needs_explicit_secrets() {
        let dir = temp_dir();
        for (setting, url) in [
            ("REDIS_URL", "redis://127.0.0.1:6379/0"),
            ("KAFKA_BROKERS", "127.0.0.1:9092"),
            ("DATABASE_URL", "postgres://u:p@h/db"),
        ] {
            let mut c = embedded(&dir);
            match setting {
                "REDIS_URL" => c.redis_url = Some(url.into()),
                "KAFKA_BROKERS" => c.kafka_brokers = Some(url.into()),
                _ => c.database_url = Some(url.into()),
            }
            let e = fill(&mut c).unwrap_err().to_string();
            assert!(e.contains("JWT_SECRET") && e.contains(setting), "{e}");
            c.settings_mut::<Todos>().jwt_secret = Some(Secret::new("s"));
            let e = fill(&mut c).unwrap_err().to_string();
            assert!(e.contains("ABACUS_API_KEYS"), "{e}");
            c.settings_mut::<Abacus>().auth_enabled = false;
            assert!(fill(&mut c).unwrap().is_none());
        }
        assert!(!dir.join(FILE_NAME).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
