//! The settings this binary reads: core's table and every service's (each service keeps its
//! rows and typed settings in its crate's `settings.rs`). `--print-config`, the loader and
//! the table in docs/operations.md all come from [`schema`].

use floodgate_core::config::Schema;
use floodgate_core::Config;

/// Core's settings, then each service's, in the order `--print-config` and the docs list
/// them.
pub fn schema() -> Schema {
    Schema::core()
        .with::<floodgate_giftcodes::Settings>()
        .with::<floodgate_primes::Settings>()
        .with::<floodgate_todos::Settings>()
        .with::<floodgate_abacus::Settings>()
}

/// Every setting at its default (no files, no environment), every service's included.
pub fn defaults() -> Config {
    schema().defaults()
}

#[cfg(test)]
mod tests;
