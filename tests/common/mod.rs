//! Shared plumbing for the integration tests: start a node in-process on port 0, spawn our
//! own Redis or Tansu processes (so stopping one never disturbs other tests), and the
//! skip-or-fail rule for missing services.

#![allow(dead_code)]

pub mod cluster;

use std::path::PathBuf;
use std::time::Duration;

use floodgate::{Running, StartOptions};
use floodgate_core::Config;
pub use floodgate_testkit::{eventually, free_port, skip, Process, TempDir};

/// Our own redis-server on a free port (no persistence).
pub fn redis() -> Option<Process> {
    floodgate_testkit::redis_server(&[])
}

/// Embedded defaults with a private SQLite file and an ephemeral port.
pub fn embedded_config(dir: &TempDir) -> Config {
    let mut c = floodgate::settings::defaults();
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.database_url = Some(format!("sqlite://{}/fg.db", dir.path().display()));
    c.node_id = format!("test-{}", uuid::Uuid::new_v4().simple());
    c
}

/// Embedded defaults with the secrets every service needs: API key `k1` for abacus and
/// `jwt_secret` for todo writes.
pub fn all_services_config(dir: &TempDir, jwt_secret: &str) -> Config {
    let mut c = embedded_config(dir);
    c.settings_mut::<floodgate_abacus::Settings>().api_keys =
        vec![floodgate_core::config::Secret::new("k1")];
    c.settings_mut::<floodgate_todos::Settings>().jwt_secret =
        Some(floodgate_core::config::Secret::new(jwt_secret));
    c
}

pub async fn start(config: Config) -> Running {
    floodgate::start(config, StartOptions::default())
        .await
        .expect("node starts")
}

/// Stops `node` and waits for it: it must finish cleanly within 30 s.
pub async fn stop(node: Running) {
    node.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), node.done)
        .await
        .unwrap()
        .unwrap();
}

/// Stops `node` and waits for it, however it ends.
pub async fn stop_any(node: Running) {
    node.shutdown.cancel();
    let _ = node.done.await;
}

pub fn url(node: &Running, path: &str) -> String {
    format!("http://{}{}", node.addr, path)
}

fn tansu_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FLOODGATE_TANSU") {
        return Some(PathBuf::from(p));
    }
    let tools = std::env::var("FLOODGATE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/floodgate/tools")
        });
    let p = tools.join("bin/tansu");
    p.exists().then_some(p)
}

/// Our own Tansu broker (memory storage) on a free port. `pause`/`resume` take it away
/// keeping its state; `kill`/`restart` make it come back empty.
pub fn tansu(dir: &TempDir) -> Option<Process> {
    tansu_with(dir, "memory://tansu/")
}

/// Our own Tansu broker keeping its state in SQLite under `dir`: `kill`/`restart` make it
/// come back with its topics, messages, groups and committed offsets.
pub fn tansu_kept(dir: &TempDir) -> Option<Process> {
    tansu_with(dir, "sqlite://tansu.db")
}

fn tansu_with(dir: &TempDir, storage: &str) -> Option<Process> {
    let Some(bin) = tansu_binary() else {
        skip("tansu binary (scripts/install-deps)");
        return None;
    };
    let port = free_port();
    let listener = format!("tcp://127.0.0.1:{port}");
    let cmd = vec![
        bin.display().to_string(),
        "broker".into(),
        "--listener-url".into(),
        listener.clone(),
        "--advertised-listener-url".into(),
        listener,
        "--storage-engine".into(),
        storage.into(),
    ];
    Some(Process::start(cmd, port, dir.path().to_path_buf()))
}

/// Waits until GET `url` answers `code` (0 = connection failed); true when it did.
pub async fn until_status(http: &reqwest::Client, url: &str, code: u16, timeout: Duration) -> bool {
    eventually(timeout, || async {
        let got = http
            .get(url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        got == code
    })
    .await
}

/// Waits until `{base}/health` answers 200; true when it did.
pub async fn healthy(http: &reqwest::Client, base: &str, timeout: Duration) -> bool {
    until_status(http, &format!("{base}/health"), 200, timeout).await
}

/// Waits until the request `req` builds answers 200; true when it did.
pub async fn until_ok(timeout: Duration, req: impl Fn() -> reqwest::RequestBuilder) -> bool {
    eventually(timeout, || async {
        req()
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
    })
    .await
}

/// Sends `req` and parses the answer as JSON (whatever its status).
pub async fn send_json(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json body")
}

pub async fn post_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    send_json(http.post(url)).await
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    send_json(http.get(url)).await
}

/// GET `url` with one extra header; the answer, whatever its status.
pub async fn get_with(
    http: &reqwest::Client,
    url: &str,
    (name, value): (&str, &str),
) -> reqwest::Response {
    http.get(url).header(name, value).send().await.expect("GET")
}

/// The body of GET `url` as text (e.g. `/metrics`), whatever the status.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    let r = http.get(url).send().await.expect("GET");
    r.text().await.expect("body")
}

/// Runs `cmd` with `args` in `dir` to completion.
pub fn run_in(
    mut cmd: std::process::Command,
    dir: &TempDir,
    args: &[&str],
) -> std::process::Output {
    cmd.current_dir(dir.path())
        .args(args)
        .output()
        .expect("run floodgate")
}

/// Asserts that a finished command failed with exit `code` and one line on stderr; the line.
pub fn failed_with_one_line(out: &std::process::Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

/// Asserts that a finished command succeeded (showing its stderr if not); its stdout.
pub fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failed assertion never
/// leaves it running.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Killed {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Killed {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

/// Secrets [`binary`] passes, as a deployment with shared backends must.
pub const TEST_JWT_SECRET: &str = "floodgate-test-secret";
pub const TEST_API_KEY: &str = "floodgate-test-key";

/// The real `floodgate` binary with the test secrets set, and the developer's own backend
/// and secret settings kept out of its environment.
pub fn binary() -> std::process::Command {
    let mut c = binary_unconfigured();
    c.env("JWT_SECRET", TEST_JWT_SECRET)
        .env("ABACUS_API_KEYS", TEST_API_KEY);
    c
}

/// The real `floodgate` binary as a newcomer runs it: nothing configured.
pub fn binary_unconfigured() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_floodgate"));
    for var in [
        "REDIS_URL",
        "DATABASE_URL",
        "KAFKA_BROKERS",
        "KAFKA_BOOTSTRAP_SERVERS",
        "JWT_SECRET",
        "FLOODGATE_JWT_SECRET",
        "ABACUS_API_KEYS",
        "RATE_LIMIT_CAPACITY",
    ] {
        c.env_remove(var);
    }
    c
}

/// Whether the headless browser tests can run here (Debian's chromium and
/// tests/browser/node_modules, see scripts/install-deps); skips when not.
pub fn browser_ready() -> bool {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = root
        .join("tests/browser/node_modules/playwright-core")
        .exists()
        && std::path::Path::new("/usr/bin/chromium").exists();
    if !ok {
        skip("chromium + tests/browser/node_modules (scripts/install-deps)");
    }
    ok
}

/// Runs `node tests/browser/SCRIPT ARGS...` and returns the JSON it prints.
pub async fn browser(script: &str, args: Vec<std::ffi::OsString>) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let mut cmd = std::process::Command::new("node");
    cmd.arg(path).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run node");
    assert!(
        out.status.success(),
        "browser run of {script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the browser script")
}
