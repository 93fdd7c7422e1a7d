//! The `floodgate` binary: parses the command line and hands over to the library.
//! Errors become one line on stderr; a bad setting exits with code 2.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use floodgate::cli::{Cli, Command, ConfigArgs, SeedWhat};
use floodgate::StartOptions;
use floodgate_core::config::dev_secrets::{self, DevSecrets};
use floodgate_core::config::ConfigError;
use floodgate_core::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(run(cli))
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("floodgate: {e:#}");
    ExitCode::from(1)
}

fn load(args: &ConfigArgs) -> Result<Config, ExitCode> {
    args.load().map(|(c, _)| c).map_err(config_exit)
}

/// The configuration with the secrets the API needs: configured, or zero-setup ones.
fn load_with_secrets(args: &ConfigArgs) -> Result<(Config, Option<DevSecrets>), ExitCode> {
    let mut cfg = load(args)?;
    let dev = dev_secrets::fill(&mut cfg).map_err(config_exit)?;
    Ok((cfg, dev))
}

/// The configuration with JWT_SECRET set (configured, or the zero-setup one).
fn load_with_jwt(args: &ConfigArgs) -> Result<Config, ExitCode> {
    let mut cfg = load(args)?;
    dev_secrets::fill_only(&mut cfg, floodgate_todos::settings::JWT_SECRET).map_err(config_exit)?;
    Ok(cfg)
}

fn config_exit(e: ConfigError) -> ExitCode {
    eprintln!("floodgate: {e}");
    ExitCode::from(2)
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve {
            config,
            no_workers,
            workers,
            print_config,
        } => {
            let config = config.with_workers(workers);
            if print_config {
                return match config.load() {
                    Ok((_, resolved)) => {
                        print!("{}", resolved.render());
                        ExitCode::SUCCESS
                    }
                    Err(e) => config_exit(e),
                };
            }
            let (cfg, dev) = match load_with_secrets(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let opts = StartOptions {
                workers: !no_workers,
                http: true,
            };
            node(cfg, opts, dev).await
        }
        Command::Worker { config, workers } => match config.with_workers(workers).load_worker() {
            Ok(cfg) => {
                let opts = StartOptions {
                    workers: true,
                    http: false,
                };
                node(cfg, opts, None).await
            }
            Err(e) => config_exit(e),
        },
        Command::Migrate { config } => match load(&config) {
            Ok(cfg) => result(migrate(cfg).await),
            Err(code) => code,
        },
        Command::Bench { args } => {
            // A local zero-setup node's key, when there is one.
            let key = dev_secrets::stored_secret(
                &Config::defaults().dev_secrets_path(),
                floodgate_abacus::settings::ABACUS_API_KEYS,
            );
            floodgate_bench::run(args, key).await
        }
        Command::Seed {
            what: SeedWhat::Todos { count, config },
        } => match load(&config) {
            Ok(cfg) => result(seed_todos(cfg, count).await),
            Err(code) => code,
        },
        Command::Token { sub, ttl, config } => match load_with_jwt(&config) {
            Ok(cfg) => token(&cfg, &sub, &ttl),
            Err(code) => code,
        },
    }
}

/// `24h`, `30m`, `45s` or plain seconds.
fn parse_ttl(s: &str) -> Option<std::time::Duration> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

fn token(cfg: &Config, sub: &str, ttl: &str) -> ExitCode {
    let Some(secret) = &cfg.settings::<floodgate_todos::Settings>().jwt_secret else {
        return config_exit(ConfigError::Invalid {
            setting: floodgate_todos::settings::JWT_SECRET.into(),
            reason: "must be set to mint a token".into(),
        });
    };
    let Some(ttl) = parse_ttl(ttl) else {
        return config_exit(ConfigError::Invalid {
            setting: "--ttl".into(),
            reason: format!("expected e.g. 24h, 30m or 3600s, got {ttl:?}"),
        });
    };
    match floodgate_todos::mint_token(secret.expose(), sub, ttl) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&anyhow::anyhow!("{e}")),
    }
}

async fn seed_todos(cfg: Config, count: u64) -> anyhow::Result<()> {
    let telemetry = floodgate_core::telemetry::init(cfg.log_json, "warn", None);
    let backends = floodgate_core::Backends::connect(&cfg).await?;
    backends.db.migrate(floodgate::MIGRATIONS).await?;
    let inserted = floodgate_todos::seed(&backends.db, count).await?;
    let ctx = floodgate_core::AppContext::new(cfg, backends);
    // Running nodes drop their cached lists when the version moves.
    floodgate_todos::invalidate(&ctx).await?;
    println!(
        "seeded todos: {inserted} inserted, {} already present",
        count - inserted
    );
    telemetry.shutdown();
    Ok(())
}

fn result(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn node(cfg: Config, opts: StartOptions, dev: Option<DevSecrets>) -> ExitCode {
    let telemetry =
        floodgate_core::telemetry::init(cfg.log_json, &cfg.log_filter, cfg.trace_export());
    let signals = floodgate_core::shutdown::Signals::install();
    let running = match floodgate::start(cfg, opts).await {
        Ok(r) => r,
        // Its message already names the cause: one line, not the cause chain again.
        Err(e) => return fail(&anyhow::anyhow!("{e}")),
    };
    if let Some(dev) = dev {
        floodgate::devmode::announce(&running.ctx.config, running.addr, &dev);
    }
    signals.cancel_on_signal(running.shutdown.clone());
    let done = running.done.await;
    // The exporter flushes with blocking HTTP calls: keep them off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&anyhow::anyhow!("server task failed: {e}")),
    }
}

async fn migrate(cfg: Config) -> anyhow::Result<()> {
    let _telemetry = floodgate_core::telemetry::init(cfg.log_json, &cfg.log_filter, None);
    let db = floodgate_db::Db::connect(cfg.database_url.as_deref()).await?;
    let n = db.migrate(floodgate::MIGRATIONS).await?;
    println!("applied {n} migration(s); schema is up to date");
    Ok(())
}
