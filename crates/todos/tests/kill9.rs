//! `kill -9` of a node while writes flow and batches are being applied: after a restart,
//! every write that was answered 202 is in the database exactly once, and nothing else
//! appeared. Runs the `todos_node` example as a real process: on the embedded backends always,
//! and on Redis + Kafka + PostgreSQL when they are configured.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fresh_pg, logs, token, var, wait_for_some, TempDir, SECRET};
use floodgate_testkit::free_port;

const WRITERS: usize = 32;
/// Kill once this many writes were accepted (or after KILL_AFTER, whichever is first).
const KILL_AT: usize = 600;
const KILL_AFTER: Duration = Duration::from_secs(5);

/// Builds the example for the profile these tests were built with (a no-op when it is up
/// to date) and returns its path.
fn node_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args([
        "build",
        "--quiet",
        "-p",
        "floodgate-todos",
        "--example",
        "todos_node",
    ]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("skipped: cannot build the todos_node example ({status:?})");
        return None;
    }
    let bin = profile_dir.join("examples").join("todos_node");
    bin.exists().then_some(bin)
}

struct Backends {
    vars: Vec<(&'static str, String)>,
}

const BACKEND_VARS: &[&str] = &[
    "REDIS_URL",
    "FLOODGATE_REDIS_URL",
    "KAFKA_BROKERS",
    "KAFKA_BOOTSTRAP_SERVERS",
    "FLOODGATE_KAFKA_BROKERS",
    "DATABASE_URL",
    "FLOODGATE_DATABASE_URL",
];

fn spawn(bin: &Path, dir: &Path, port: u16, topic: &str, b: &Backends, run: usize) -> Child {
    let log = std::fs::File::create(dir.join(format!("node-{run}.log"))).expect("log file");
    let mut cmd = Command::new(bin);
    cmd.arg("serve").current_dir(dir);
    for v in BACKEND_VARS {
        cmd.env_remove(v);
    }
    cmd.env("FLOODGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", SECRET)
        .env("KAFKA_TODO_TOPIC", topic)
        .env("FLOODGATE_LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in &b.vars {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn node")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    wait_for_some(Duration::from_secs(60), "node healthy", || async {
        let r = client.get(format!("{base}/health")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

async fn listed_ids(client: &reqwest::Client, base: &str) -> Option<Vec<String>> {
    let r = client.get(format!("{base}/todos")).send().await.ok()?;
    let v: serde_json::Value = r.json().await.ok()?;
    Some(
        v.as_array()?
            .iter()
            .filter_map(|t| t["id"].as_str().map(String::from))
            .collect(),
    )
}

async fn kill9_loses_and_duplicates_nothing(b: Backends) {
    let Some(bin) = node_binary() else { return };
    let dir = TempDir::new();
    let topic = format!("todos-kill9-{}", uuid::Uuid::new_v4().simple());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(&bin, dir.path(), port, &topic, &b, 1);
    wait_healthy(&client, &base).await;

    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let tok = token("alice");
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, base, tok) = (client.clone(), base.clone(), tok.clone());
        let (accepted, sent, dead) = (accepted.clone(), sent.clone(), dead.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                if dead.load(Ordering::Relaxed) {
                    return;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::json!({"title": format!("w{w}-{i}")});
                let r = client
                    .post(format!("{base}/todos"))
                    .bearer_auth(&tok)
                    .json(&body)
                    .send()
                    .await;
                let Ok(r) = r else { return };
                if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                    // The broker is not ready yet (topic being created): try again.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                if r.status() != reqwest::StatusCode::ACCEPTED {
                    return;
                }
                let Ok(v) = r.json::<serde_json::Value>().await else {
                    return;
                };
                if let Some(id) = v["id"].as_str() {
                    accepted.lock().expect("lock").push(id.to_string());
                }
            }
        }));
    }
    let started = tokio::time::Instant::now();
    while accepted.lock().expect("lock").len() < KILL_AT && started.elapsed() < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    dead.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let accepted: HashSet<String> = accepted.lock().expect("lock").iter().cloned().collect();
    let sent = sent.load(Ordering::Relaxed);
    let log = std::fs::read_to_string(dir.path().join("node-1.log")).unwrap_or_default();
    assert!(
        !accepted.is_empty(),
        "no write accepted before the kill ({sent} sent); node log:\n{log}"
    );

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(&bin, dir.path(), port, &topic, &b, 2);
    wait_healthy(&client, &base).await;
    let listed = wait_for_some(
        Duration::from_secs(120),
        "every accepted write applied",
        || async {
            let ids = listed_ids(&client, &base).await?;
            let set: HashSet<&String> = ids.iter().collect();
            accepted.iter().all(|id| set.contains(id)).then_some(ids)
        },
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "a todo is listed twice");
    // Writes in flight at the kill may or may not have been committed; nothing else may appear.
    assert!(
        listed.len() <= sent,
        "{} rows from {sent} requests",
        listed.len()
    );
    assert!(
        listed.len() <= accepted.len() + WRITERS,
        "{} rows, {} accepted, at most {WRITERS} in flight",
        listed.len(),
        accepted.len()
    );
    eprintln!(
        "kill -9: {sent} sent, {} accepted, {} rows after restart",
        accepted.len(),
        listed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_kill9_loses_and_duplicates_nothing() {
    logs();
    let dir = TempDir::new();
    let db = format!("sqlite://{}/kill9.db", dir.path().display());
    kill9_loses_and_duplicates_nothing(Backends {
        vars: vec![("DATABASE_URL", db)],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kill9_loses_and_duplicates_nothing() {
    logs();
    let (Some(redis), Some(brokers), Some(pg)) = (
        var("FLOODGATE_TEST_REDIS_URL"),
        var("FLOODGATE_TEST_KAFKA_BROKERS"),
        var("FLOODGATE_TEST_DATABASE_URL"),
    ) else {
        return;
    };
    let db = fresh_pg(&pg).await;
    let vars = vec![
        ("REDIS_URL", redis),
        ("KAFKA_BROKERS", brokers),
        ("DATABASE_URL", db),
    ];
    kill9_loses_and_duplicates_nothing(Backends { vars }).await;
}
