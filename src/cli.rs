//! The command line: `floodgate serve | worker | bench | seed | token | migrate`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use floodgate_core::config::{self, ConfigError, LoadOptions, Resolved};
use floodgate_core::Config;

#[derive(Debug, Parser)]
#[command(
    name = "floodgate",
    version,
    about = "Gift codes, prime jobs, todos and a running sum from one fast binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API, with the service workers in the same process.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Run the API alone (workers run as `floodgate worker`).
        #[arg(long, conflicts_with = "workers")]
        no_workers: bool,
        /// Run only these workers, e.g. `--workers primes,todos` (FLOODGATE_WORKERS).
        #[arg(long, value_name = "LIST")]
        workers: Option<String>,
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Run the service workers only.
    Worker {
        #[command(flatten)]
        config: ConfigArgs,
        /// Run only these workers, e.g. `--workers primes,todos` (FLOODGATE_WORKERS).
        #[arg(long, value_name = "LIST")]
        workers: Option<String>,
    },
    /// Load generator (wrk/autocannon style); `floodgate bench --help` for its flags.
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Insert sample data.
    Seed {
        #[command(subcommand)]
        what: SeedWhat,
    },
    /// Mint a development JWT (HS256, signed with JWT_SECRET).
    Token {
        #[arg(long)]
        sub: String,
        /// Lifetime, e.g. 24h, 30m, 3600s.
        #[arg(long, default_value = "24h")]
        ttl: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SeedWhat {
    /// Insert `Todo N` / `Description for todo N` for user `seed-user`.
    Todos {
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Flags that override every other configuration layer.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// Configuration file (default ./floodgate.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Dotenv file (default ./.env when present).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Listen address, e.g. 0.0.0.0:8080.
    #[arg(long)]
    pub listen: Option<String>,
    #[arg(long)]
    pub redis_url: Option<String>,
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    #[arg(long)]
    pub database_url: Option<String>,
    /// Any setting by name, e.g. --set RATE_LIMIT_CAPACITY=50 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    /// These flags plus `--workers LIST` as the `FLOODGATE_WORKERS` setting (it wins over
    /// every other layer, like any flag).
    pub fn with_workers(mut self, workers: Option<String>) -> Self {
        if let Some(w) = workers {
            self.set.push(format!("FLOODGATE_WORKERS={w}"));
        }
        self
    }

    pub fn load_options(&self) -> Result<LoadOptions, ConfigError> {
        let mut flags = Vec::new();
        let named = [
            ("FLOODGATE_LISTEN", &self.listen),
            ("FLOODGATE_REDIS_URL", &self.redis_url),
            ("FLOODGATE_KAFKA_BROKERS", &self.kafka_brokers),
            ("FLOODGATE_DATABASE_URL", &self.database_url),
        ];
        for (name, value) in named {
            if let Some(v) = value {
                flags.push((name.to_string(), v.clone()));
            }
        }
        for pair in &self.set {
            let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::Invalid {
                setting: pair.clone(),
                reason: "--set expects NAME=VALUE".into(),
            })?;
            flags.push((k.trim().to_string(), v.to_string()));
        }
        Ok(LoadOptions {
            config_file: self.config.clone(),
            env_file: self.env_file.clone(),
            flags,
        })
    }

    pub fn load(&self) -> Result<(Config, Resolved), ConfigError> {
        config::load(&self.load_options()?)
    }
}
