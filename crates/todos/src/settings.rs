//! The todo service's settings: its rows of the settings table and their typed values
//! (`ctx.config.settings::<Settings>()`). The idempotency-record lifetime is core's
//! (`IDEMPOTENCY_TTL_SECONDS`, shared with abacus).

use std::time::Duration;

use floodgate_core::config::parse::{parse_duration_ms, parse_duration_secs, parse_positive};
use floodgate_core::config::{ConfigError, DevSecret, Resolved, Secret, ServiceSettings, Setting};

floodgate_core::setting_names! {
    JWT_SECRET, KAFKA_TODO_TOPIC, CACHE_TTL_SEC, CACHE_STALENESS_MS, TODOS_MAX_LIMIT,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// HS256 secret todo writes are signed with.
    pub jwt_secret: Option<Secret>,
    /// The command topic.
    pub topic: String,
    /// Lifetime of a cached list.
    pub cache_ttl: Duration,
    /// Longest a node serves an old list after a write.
    pub cache_staleness: Duration,
    /// Largest list `/todos` returns.
    pub max_limit: u64,
}

impl ServiceSettings for Settings {
    const WORKER: Option<&'static str> = Some("todos");
    const IGNORED: &'static [(&'static str, &'static str)] = &[(
        "WORKER_POOL_SIZE",
        "the todo worker applies commands in batches, not one goroutine per command",
    )];
    const TABLE: &'static [Setting] = &[
        Setting::secret(
            JWT_SECRET,
            &["FLOODGATE_JWT_SECRET"],
            "HS256 secret for todo writes; with every backend embedded, generated into data/dev-secrets.env when unset",
        ),
        Setting::new(
            KAFKA_TODO_TOPIC,
            &[],
            Some("todo-commands"),
            "todo command topic",
        ),
        Setting::new(
            CACHE_TTL_SEC,
            &[],
            Some("300"),
            "todo list cache entry lifetime",
        ),
        Setting::new(
            CACHE_STALENESS_MS,
            &["FLOODGATE_CACHE_STALENESS_MS"],
            Some("100"),
            "longest a node serves an old todo list after a write",
        ),
        Setting::new(
            TODOS_MAX_LIMIT,
            &["FLOODGATE_TODOS_MAX_LIMIT"],
            Some("10000"),
            "largest list /todos returns",
        ),
    ];

    fn parse(r: &Resolved) -> Result<Self, ConfigError> {
        Ok(Settings {
            jwt_secret: r.nonempty(JWT_SECRET)?.map(Secret::new),
            topic: r.text(KAFKA_TODO_TOPIC)?,
            cache_ttl: parse_duration_secs(r, CACHE_TTL_SEC)?,
            cache_staleness: parse_duration_ms(r, CACHE_STALENESS_MS)?,
            max_limit: parse_positive(r, TODOS_MAX_LIMIT)?,
        })
    }

    fn missing_secrets(&self) -> Vec<DevSecret> {
        match self.jwt_secret {
            // 64 hex characters: a signing secret.
            None => vec![DevSecret {
                name: JWT_SECRET,
                len: 64,
            }],
            Some(_) => Vec::new(),
        }
    }

    fn set_secret(&mut self, name: &str, value: Secret) {
        if name == JWT_SECRET {
            self.jwt_secret = Some(value);
        }
    }
}
