//! Typed parsing of resolved values; each error names the setting and what was expected.
//! A name in no settings table is [`ConfigError::Unregistered`], never an empty value.

use std::time::Duration;

use super::{ConfigError, Resolved};

fn raw<'a>(r: &'a Resolved, name: &str) -> Result<&'a str, ConfigError> {
    Ok(r.value(name)?.unwrap_or("").trim())
}

pub fn parse_u64(r: &Resolved, name: &str) -> Result<u64, ConfigError> {
    let v = raw(r, name)?;
    v.parse::<u64>()
        .map_err(|_| ConfigError::invalid(name, format!("expected a whole number, got {v:?}")))
}

pub fn parse_positive(r: &Resolved, name: &str) -> Result<u64, ConfigError> {
    let v = raw(r, name)?;
    match v.parse::<u64>() {
        Ok(n) if n > 0 && n <= u32::MAX as u64 => Ok(n),
        _ => Err(ConfigError::invalid(
            name,
            format!("expected a positive integer, got {v:?}"),
        )),
    }
}

/// A topic's partition count: 1 to 10,000 (Kafka's own practical bound per topic).
pub fn parse_partitions(r: &Resolved, name: &str) -> Result<i32, ConfigError> {
    match parse_positive(r, name)? {
        n @ 1..=10_000 => Ok(n as i32),
        n => Err(ConfigError::invalid(
            name,
            format!("expected 1 to 10000 partitions, got {n}"),
        )),
    }
}

pub fn parse_duration_ms(r: &Resolved, name: &str) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(parse_positive(r, name)?))
}

/// Seconds, fractions allowed (the seeds write `KAFKA_GIFT_CODE_TIMEOUT=10` or `2.5`).
pub fn parse_duration_secs(r: &Resolved, name: &str) -> Result<Duration, ConfigError> {
    let v = raw(r, name)?;
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err(ConfigError::invalid(
            name,
            format!("expected a positive number of seconds, got {v:?}"),
        )),
    }
}

pub fn parse_bool(r: &Resolved, name: &str) -> Result<bool, ConfigError> {
    match raw(r, name)?.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::invalid(
            name,
            format!("expected true or false, got {other:?}"),
        )),
    }
}

/// A comma-separated list; blanks dropped, items trimmed.
pub fn parse_list(r: &Resolved, name: &str) -> Result<Vec<String>, ConfigError> {
    Ok(raw(r, name)?
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect())
}

/// Which service workers a process runs: every service's, or those named (maybe none).
/// Core does not know the names: the [`super::Schema`] checks them against the services
/// registered with it ([`super::ServiceSettings::WORKER`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workers {
    All,
    Only(Vec<String>),
}

impl Workers {
    pub const NONE: Workers = Workers::Only(Vec::new());

    /// The workers of the services named.
    pub fn only(names: &[&str]) -> Workers {
        Workers::Only(names.iter().map(|n| n.to_string()).collect())
    }

    /// Whether the worker called `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        match self {
            Workers::All => true,
            Workers::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Unset: every worker; otherwise a comma-separated list of worker names (empty: none).
pub fn parse_workers(r: &Resolved, name: &str) -> Result<Workers, ConfigError> {
    let Some(list) = r.value(name)? else {
        return Ok(Workers::All);
    };
    Ok(Workers::Only(
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
    ))
}
