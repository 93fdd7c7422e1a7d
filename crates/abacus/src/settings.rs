//! The abacus service's settings: its rows of the settings table and their typed values
//! (`ctx.config.settings::<Settings>()`). The idempotency-record lifetime is core's
//! (`IDEMPOTENCY_TTL_SECONDS`, also read as `ABACUS_IDEMPOTENCY_TTL_SECONDS`).

use std::time::Duration;

use floodgate_core::config::parse::{parse_bool, parse_duration_secs, parse_list, parse_positive};
use floodgate_core::config::{ConfigError, DevSecret, Resolved, Secret, ServiceSettings, Setting};

floodgate_core::setting_names! {
    ABACUS_API_KEYS, ABACUS_AUTH_ENABLED, ABACUS_RATE_LIMIT_ENABLED, ABACUS_RATE_LIMIT_REQUESTS,
    ABACUS_RATE_LIMIT_WINDOW_SECONDS, ABACUS_IDEMPOTENCY_REQUIRED,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub api_keys: Vec<Secret>,
    /// Require `X-API-Key`.
    pub auth_enabled: bool,
    /// Rate-limit per API key.
    pub rate_limit_enabled: bool,
    /// Requests per window per API key.
    pub rate_limit_requests: u32,
    pub rate_limit_window: Duration,
    /// `POST /abacus/number` requires `Idempotency-Key`.
    pub idempotency_required: bool,
}

impl ServiceSettings for Settings {
    const IGNORED: &'static [(&'static str, &'static str)] = &[
        (
            "ABACUS_SUM_BACKUP_TTL_SECONDS",
            "floodgate keeps no backup copy of the sum (abacus:running_sum:backup)",
        ),
        (
            "ABACUS_DATA_DIR",
            "floodgate keeps no backup file of the sum",
        ),
        (
            "ABACUS_BACKUP_FILE_PATH",
            "floodgate keeps no backup file of the sum",
        ),
    ];
    const TABLE: &'static [Setting] = &[
        Setting::secret(
            ABACUS_API_KEYS,
            &[],
            "comma-separated API keys for /abacus; with every backend embedded, generated into data/dev-secrets.env when unset",
        ),
        Setting::new(
            ABACUS_AUTH_ENABLED,
            &[],
            Some("true"),
            "require X-API-Key on /abacus",
        ),
        Setting::new(
            ABACUS_RATE_LIMIT_ENABLED,
            &[],
            Some("true"),
            "rate-limit /abacus per API key",
        ),
        Setting::new(
            ABACUS_RATE_LIMIT_REQUESTS,
            &[],
            Some("600"),
            "requests per window per API key",
        ),
        Setting::new(
            ABACUS_RATE_LIMIT_WINDOW_SECONDS,
            &[],
            Some("60"),
            "rate-limit window",
        ),
        Setting::new(
            ABACUS_IDEMPOTENCY_REQUIRED,
            &[],
            Some("true"),
            "POST /abacus/number requires Idempotency-Key",
        ),
    ];

    fn parse(r: &Resolved) -> Result<Self, ConfigError> {
        Ok(Settings {
            api_keys: parse_list(r, ABACUS_API_KEYS)?
                .into_iter()
                .map(Secret::new)
                .collect(),
            auth_enabled: parse_bool(r, ABACUS_AUTH_ENABLED)?,
            rate_limit_enabled: parse_bool(r, ABACUS_RATE_LIMIT_ENABLED)?,
            rate_limit_requests: parse_positive(r, ABACUS_RATE_LIMIT_REQUESTS)? as u32,
            rate_limit_window: parse_duration_secs(r, ABACUS_RATE_LIMIT_WINDOW_SECONDS)?,
            idempotency_required: parse_bool(r, ABACUS_IDEMPOTENCY_REQUIRED)?,
        })
    }

    fn missing_secrets(&self) -> Vec<DevSecret> {
        if self.auth_enabled && self.api_keys.is_empty() {
            // 32 hex characters: an API key.
            vec![DevSecret {
                name: ABACUS_API_KEYS,
                len: 32,
            }]
        } else {
            Vec::new()
        }
    }

    fn set_secret(&mut self, name: &str, value: Secret) {
        if name == ABACUS_API_KEYS {
            self.api_keys = vec![value];
        }
    }
}
