//! The prime-job service's settings: its rows of the settings table and their typed values
//! (`ctx.config.settings::<Settings>()`).

use std::time::Duration;

use floodgate_core::config::parse::{parse_duration_secs, parse_positive};
use floodgate_core::config::{ConfigError, Resolved, ServiceSettings, Setting};

floodgate_core::setting_names! {
    PRIMES_TOPIC, PRIMES_MAX_N, PRIMES_MAX_QUEUED, PRIMES_RESULT_TTL_SECONDS,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub topic: String,
    /// Largest n accepted by `/generate`.
    pub max_n: u64,
    /// Unfinished jobs across the cluster before `/generate` answers 503.
    pub max_queued: u32,
    /// How long job results live.
    pub result_ttl: Duration,
}

impl ServiceSettings for Settings {
    const WORKER: Option<&'static str> = Some("primes");
    const TABLE: &'static [Setting] = &[
        Setting::new(
            PRIMES_TOPIC,
            &["FLOODGATE_PRIMES_TOPIC"],
            Some("prime-jobs"),
            "prime job topic",
        ),
        Setting::new(
            PRIMES_MAX_N,
            &["FLOODGATE_PRIMES_MAX_N"],
            Some("1000000"),
            "largest n accepted by /generate",
        ),
        Setting::new(
            PRIMES_MAX_QUEUED,
            &["FLOODGATE_PRIMES_MAX_QUEUED"],
            Some("10000"),
            "unfinished prime jobs across the cluster before /generate answers 503",
        ),
        Setting::new(
            PRIMES_RESULT_TTL_SECONDS,
            &["FLOODGATE_PRIMES_RESULT_TTL_SECONDS"],
            Some("86400"),
            "how long job results live",
        ),
    ];

    fn parse(r: &Resolved) -> Result<Self, ConfigError> {
        Ok(Settings {
            topic: r.text(PRIMES_TOPIC)?,
            max_n: parse_positive(r, PRIMES_MAX_N)?,
            max_queued: parse_positive(r, PRIMES_MAX_QUEUED)? as u32,
            result_ttl: parse_duration_secs(r, PRIMES_RESULT_TTL_SECONDS)?,
        })
    }
}
