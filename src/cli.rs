//! The command line: `floodgate serve | worker | bench | seed | token | migrate`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use floodgate_core::config::settings as name;
use floodgate_core::config::{ConfigError, LoadOptions, Resolved};
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
    /// Run the service workers only; /health, /ready and /metrics on FLOODGATE_WORKER_LISTEN
    /// (default 0.0.0.0:9090; `--listen` sets it).
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
    /// Mint a JWT for todo writes (HS256, signed with JWT_SECRET; with every backend
    /// embedded and JWT_SECRET unset, with the secret in data/dev-secrets.env).
    Token {
        /// The user the token speaks for (its `sub` claim): todos it creates get this
        /// user_id, and only this user may update or delete them.
        #[arg(long, value_name = "USER")]
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
            self.set.push(format!("{}={w}", name::WORKERS));
        }
        self
    }

    pub fn load_options(&self) -> Result<LoadOptions, ConfigError> {
        self.load_options_listening_as(name::LISTEN)
    }

    /// The options with `--listen` setting `listen_setting` (the worker's own address).
    fn load_options_listening_as(&self, listen_setting: &str) -> Result<LoadOptions, ConfigError> {
        let mut flags = Vec::new();
        let named = [
            (listen_setting, &self.listen),
            (name::REDIS_URL, &self.redis_url),
            (name::KAFKA_BROKERS, &self.kafka_brokers),
            (name::DATABASE_URL, &self.database_url),
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
        crate::settings::schema().load(&self.load_options()?)
    }

    /// For `floodgate worker`: `--listen` is the worker's address, and the node listens on
    /// FLOODGATE_WORKER_LISTEN.
    pub fn load_worker(&self) -> Result<Config, ConfigError> {
        let (mut cfg, _) = crate::settings::schema()
            .load(&self.load_options_listening_as(name::WORKER_LISTEN)?)?;
        cfg.listen = cfg.worker_listen;
        Ok(cfg)
    }
}
