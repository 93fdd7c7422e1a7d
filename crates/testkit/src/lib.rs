//! Test plumbing every crate's tests share (a dev-dependency only):
//! - the rule for a missing service: skip with a message, or fail when
//!   `FLOODGATE_REQUIRE_SERVICES=1` (as `scripts/test` sets);
//! - child processes the test owns (redis-server, Tansu) that it can kill, restart on the
//!   same port, freeze and thaw, without disturbing other tests;
//! - a Redis Cluster the test owns (six redis-server processes) to crash masters in;
//! - a fresh, empty PostgreSQL database per test;
//! - a store wrapper that prefixes keys and injects failures ([`TestStore`]);
//! - waiting for a condition ([`eventually`], [`wait_for_some`]) and a temp dir removed on drop.

mod cluster;
mod process;
mod store;
mod wait;

pub use cluster::{redis_cluster, RedisCluster, NODE_TIMEOUT_MS};
pub use process::Process;
pub use store::{Faults, TestStore};
pub use wait::{eventually, wait_for_some, TempDir};

use std::net::TcpListener;
use std::process::{Command, Stdio};

/// Handles a missing service: panics when CI demands services, otherwise says so.
pub fn skip(what: &str) {
    let msg = format!("skipped: {what} not set");
    if std::env::var("FLOODGATE_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("{msg}");
}

/// The value of a service variable such as `FLOODGATE_TEST_REDIS_URL`, or `skip` and None.
pub fn env_or_skip(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            skip(var);
            None
        }
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A redis-server of the test's own on a free port, with `extra` arguments (e.g. an
/// append-only file), running; None (after `skip`) when redis-server is not installed.
pub fn redis_server(extra: &[&str]) -> Option<Process> {
    let mut p = redis_server_stopped(extra)?;
    p.restart();
    Some(p)
}

/// Like [`redis_server`] but not started yet (to test clients created while it is down).
pub fn redis_server_stopped(extra: &[&str]) -> Option<Process> {
    if !installed("redis-server") {
        skip("redis-server on PATH");
        return None;
    }
    let port = free_port();
    let mut cmd: Vec<String> = [
        "redis-server",
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !extra.contains(&"--appendonly") {
        cmd.extend(["--save", "", "--appendonly", "no"].map(String::from));
    }
    cmd.extend(extra.iter().map(|s| s.to_string()));
    Some(Process::stopped(cmd, port, std::env::temp_dir()))
}

/// `program --version` runs and succeeds.
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Creates an empty database on the PostgreSQL server at `admin_url` and returns its URL,
/// so "first start" (migrations, empty tables) is real in every test.
pub async fn fresh_pg_database(admin_url: &str) -> String {
    let admin = floodgate_db::Db::connect(Some(admin_url))
        .await
        .expect("connect admin");
    let name = format!("fg_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(admin.pool())
        .await
        .expect("create database");
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

/// Instantiates every case once per backend set: a module per set, in it a
/// `#[tokio::test]` per case that builds the set's environment and runs
/// `crate::cases::<case>(env)`. A set's expression is an `Option`, evaluated inside the
/// (async) test: `None` (a service not configured, already reported by `skip`) ends it.
///
/// ```ignore
/// floodgate_testkit::per_backend! {
///     memory => Some(crate::common::Env::memory()),
///     redis => crate::common::Env::redis();
///     [add_get_and_reset, bad_numbers_are_400]
/// }
/// ```
// `crate::cases` is meant: the cases live in the test crate that calls the macro.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! per_backend {
    ($($set:ident => $env:expr),+ $(,)?; $cases:tt) => {
        $(
            mod $set {
                $crate::per_backend!(@cases $env; $cases);
            }
        )+
    };
    (@cases $env:expr; [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(env) = $env else {
                    return;
                };
                crate::cases::$case(env).await;
            }
        )*
    };
}

/// Checks a rate limit of `limit` per `window` from admissions as (sent, answered) instants.
/// The limiter admitted each somewhere in between, so `limit + 1` of them whose true times
/// span less than `window` would show up as a group with `max(answered) - min(sent) <
/// window` (the check can only be loosened by timing noise, never tightened).
pub fn assert_at_most_limit_in_any_window(
    mut admitted: Vec<(std::time::Instant, std::time::Instant)>,
    limit: usize,
    window: std::time::Duration,
) {
    admitted.sort();
    for (i, group) in admitted.windows(limit + 1).enumerate() {
        let first_sent = group[0].0;
        let last_answered = group.iter().map(|a| a.1).max().unwrap_or(first_sent);
        assert!(
            last_answered - first_sent >= window,
            "admissions {i}..={} ({} of them) fit in {:?} < {window:?}",
            i + limit,
            limit + 1,
            last_answered - first_sent
        );
    }
}
