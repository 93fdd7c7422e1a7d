//! The gift-code service's settings: its rows of the settings table and their typed values
//! (`ctx.config.settings::<Settings>()`).

use std::time::Duration;

use floodgate_core::config::parse::{parse_duration_secs, parse_positive, parse_u64};
use floodgate_core::config::{ConfigError, Resolved, ServiceSettings, Setting};

floodgate_core::setting_names! {
    RATE_LIMIT_CAPACITY, ADMISSION_WAIT_MS, KAFKA_GIFT_CODE_TIMEOUT, TASKS_TOPIC, RESULTS_TOPIC,
    KAFKA_REPLY_RETENTION_MS = "FLOODGATE_KAFKA_REPLY_RETENTION_MS",
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `/queue` requests in flight across the cluster.
    pub rate_limit_capacity: u32,
    /// How long `/queue` may wait for a slot before 429.
    pub admission_wait: Duration,
    /// How long a request waits for its reply (504 after).
    pub timeout: Duration,
    pub tasks_topic: String,
    pub results_topic: String,
    /// Retention of the request and reply topics floodgate creates; `None` = the broker's
    /// default.
    pub reply_retention: Option<Duration>,
}

impl ServiceSettings for Settings {
    const WORKER: Option<&'static str> = Some("giftcodes");
    const IGNORED: &'static [(&'static str, &'static str)] = &[
        ("MAX_QUEUE_SIZE", "not used by the seed's handlers either; /queue admission is RATE_LIMIT_CAPACITY and ADMISSION_WAIT_MS"),
        ("WORKER_CONCURRENCY", "the gift-code worker's concurrency is fixed; scale with more `floodgate worker` processes"),
    ];
    const TABLE: &'static [Setting] = &[
        Setting::new(
            RATE_LIMIT_CAPACITY,
            &["FLOODGATE_RATE_LIMIT_CAPACITY"],
            Some("100"),
            "/queue requests in flight across the cluster",
        ),
        Setting::new(
            ADMISSION_WAIT_MS,
            &["FLOODGATE_ADMISSION_WAIT_MS"],
            Some("0"),
            "how long /queue may wait for a slot before 429",
        ),
        Setting::new(
            KAFKA_GIFT_CODE_TIMEOUT,
            &["FLOODGATE_GIFT_CODE_TIMEOUT"],
            Some("10"),
            "seconds to wait for a gift-code reply (504 after)",
        ),
        Setting::new(TASKS_TOPIC, &[], Some("tasks"), "gift-code request topic"),
        Setting::new(RESULTS_TOPIC, &[], Some("results"), "gift-code reply topic"),
        Setting::new(
            KAFKA_REPLY_RETENTION_MS,
            &[],
            Some("3600000"),
            "`retention.ms` of the gift-code request and reply topics floodgate creates (`tasks`, `results`, `results.N`); 0 = the broker's default",
        ),
    ];

    fn parse(r: &Resolved) -> Result<Self, ConfigError> {
        Ok(Settings {
            rate_limit_capacity: parse_positive(r, RATE_LIMIT_CAPACITY)? as u32,
            admission_wait: Duration::from_millis(parse_u64(r, ADMISSION_WAIT_MS)?),
            timeout: parse_duration_secs(r, KAFKA_GIFT_CODE_TIMEOUT)?,
            tasks_topic: r.text(TASKS_TOPIC)?,
            results_topic: r.text(RESULTS_TOPIC)?,
            reply_retention: match parse_u64(r, KAFKA_REPLY_RETENTION_MS)? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
        })
    }
}
