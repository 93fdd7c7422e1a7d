//! The dashboard as a person sees it: headless Chromium (Debian's chromium driven by
//! playwright-core, see tests/browser/) opens /dashboard while load runs. One node alone
//! must show live samples; a cluster of real processes sharing a Redis store must list
//! every node and worker with its own figures per service, and drop a killed node within
//! the membership expiry. `FLOODGATE_UPDATE_SCREENSHOT=1` refreshes docs/dashboard.png
//! (the cluster under load).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

/// Runs tests/browser/dashboard.mjs against `base` and returns what it read from the page.
async fn open_dashboard(base: String, shot: PathBuf, nodes: &[&str]) -> Value {
    let mut args = vec![base.into(), shot.into_os_string()];
    if !nodes.is_empty() {
        args.push(nodes.join(",").into());
    }
    browser("dashboard.mjs", args).await
}

fn screenshot(dir: &TempDir) -> PathBuf {
    if std::env::var("FLOODGATE_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png")
    } else {
        dir.path().join("dashboard.png")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_receives_live_samples_under_load() {
    if !browser_ready() {
        return;
    }
    let dir = TempDir::new();
    let node = start(embedded_config(&dir)).await;
    let base = format!("http://{}", node.addr);
    // A few seconds of history before the page opens.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Steady load on a cheap route while the page watches.
    let stop = CancellationToken::new();
    let load = {
        let (stop, url) = (stop.clone(), format!("{base}/health"));
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sent = 0u64;
            while !stop.is_cancelled() {
                if http.get(&url).send().await.is_ok() {
                    sent += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            sent
        })
    };
    let result = open_dashboard(base, dir.path().join("one.png"), &[]).await;
    stop.cancel();
    let sent = load.await.unwrap();
    assert_eq!(result["timed_out"], false, "{result}");
    assert!(result["live"].as_u64().unwrap() >= 4, "{result}");
    assert!(
        result["history_on_open"].as_u64().unwrap() >= 2,
        "the page opened without the node's history: {result}"
    );
    assert_eq!(result["state"], "live", "{result}");
    assert_eq!(result["node"], node.ctx.config.node_id.as_str(), "{result}");
    // Embedded: the store is the process's own, so the cluster is this node alone.
    assert_eq!(result["members"], 1, "{result}");
    assert!(
        result["rps"].as_f64().unwrap() > 0.0,
        "page showed no traffic while {sent} requests ran: {result}"
    );
    assert!(
        result["drawn"].as_u64().unwrap() > 0,
        "chart not drawn: {result}"
    );
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    node.shutdown.cancel();
}

struct Member {
    child: Killed,
    base: String,
}

/// A real `floodgate` process on the shared Redis store (bus and database its own).
async fn member(dir: &TempDir, redis: &str, name: &'static str, args: &[&str]) -> Member {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).expect("log");
    let child = binary()
        .args(args)
        .current_dir(dir.path())
        .env("REDIS_URL", redis)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/{name}.db", dir.path().display()),
        )
        .env("FLOODGATE_NODE_ID", name)
        .env("FLOODGATE_LISTEN", &addr)
        .env("FLOODGATE_WORKER_LISTEN", &addr)
        .env("FLOODGATE_LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn floodgate");
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let up = healthy(&http, &base, Duration::from_secs(60)).await;
    assert!(up, "{name} never became healthy");
    Member {
        child: Killed(child),
        base,
    }
}

/// Every service, over and over, through `base` until `stop`: gift codes, prime jobs,
/// todo reads and writes, abacus adds (every tenth a replay of the previous key).
async fn drive(base: String, stop: CancellationToken) -> u64 {
    let http = reqwest::Client::new();
    let token = floodgate_todos::mint_token(TEST_JWT_SECRET, "dash", Duration::from_secs(3600))
        .expect("token");
    let mut i = 0u64;
    while !stop.is_cancelled() {
        let key = if i % 10 == 9 { i - 9 } else { i };
        let _ = http.post(format!("{base}/queue")).send().await;
        let _ = http.post(format!("{base}/generate?n=200")).send().await;
        let _ = http.get(format!("{base}/todos?limit=10")).send().await;
        if i.is_multiple_of(3) {
            let _ = http
                .post(format!("{base}/todos"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"title": format!("t{i}"), "description": ""}))
                .send()
                .await;
        }
        let _ = http
            .post(format!("{base}/abacus/number"))
            .header("X-API-Key", TEST_API_KEY)
            .header("Idempotency-Key", format!("dash-{base}-{key}"))
            .json(&serde_json::json!({"number": 1}))
            .send()
            .await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    i
}

/// Reads `base`'s event stream until a frame lists exactly `nodes`; the time it took.
async fn until_members(base: &str, nodes: &[&str], limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET /dashboard/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut lines = BufReader::new(stream).lines();
    let mut event = String::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                if event != "frame" {
                    continue;
                }
                let frame: Value = serde_json::from_str(data).ok()?;
                let mut seen: Vec<&str> = frame["nodes"]
                    .as_array()?
                    .iter()
                    .filter_map(|n| n["node"].as_str())
                    .collect();
                seen.sort();
                if seen == nodes {
                    return Some(started.elapsed());
                }
            }
        }
        None
    };
    tokio::time::timeout(limit, read).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_view_lists_every_node_with_service_figures() {
    if !browser_ready() {
        return;
    }
    let Some(redis) = redis() else { return };
    let url = redis.redis_url();
    let dir = TempDir::new();
    let a = member(&dir, &url, "dash-a", &["serve"]).await;
    let b = member(&dir, &url, "dash-b", &["serve"]).await;
    let c = member(&dir, &url, "dash-c", &["serve"]).await;
    let w = member(&dir, &url, "dash-w", &["worker"]).await;

    let stop = CancellationToken::new();
    let loads: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|m| tokio::spawn(drive(m.base.clone(), stop.clone())))
        .collect();
    let loaded = ["dash-a", "dash-b", "dash-c"];
    let result = open_dashboard(a.base.clone(), screenshot(&dir), &loaded).await;
    stop.cancel();
    let mut rounds = 0;
    for l in loads {
        rounds += l.await.unwrap();
    }
    assert_eq!(
        result["timed_out"], false,
        "after {rounds} rounds: {result}"
    );
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    assert_eq!(result["node"], "dash-a", "{result}");
    assert_eq!(result["members"], 4, "{result}");
    let rows = result["rows"].as_array().unwrap();
    let role = |n: &str| {
        rows.iter()
            .find(|r| r["node"] == n)
            .and_then(|r| r["role"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(role("dash-w").starts_with("worker"), "{result}");
    for node in loaded {
        assert!(role(node).starts_with("serve"), "{node}: {result}");
        let figure = |panel: &str, fig: &str| result["panels"][panel][node][fig].as_f64();
        for (panel, fig) in [
            ("giftcodes", "ok"),
            ("primes", "submitted"),
            ("todos", "reads"),
            ("todos", "accepted"),
            ("abacus", "requests"),
        ] {
            assert!(
                figure(panel, fig).unwrap_or(0.0) > 0.0,
                "{node} {panel}.{fig}: {result}"
            );
        }
    }
    println!(
        "cluster view: {} members, {rounds} load rounds",
        result["members"]
    );

    // A killed node leaves the view within the membership expiry.
    let mut b = b;
    let _ = b.child.kill();
    let _ = b.child.wait();
    let killed = Instant::now();
    let rest = ["dash-a", "dash-c", "dash-w"];
    let gone = until_members(&a.base, &rest, Duration::from_secs(15)).await;
    let after = killed.elapsed();
    println!(
        "dash-b killed -9: gone from dash-a's view after {:.1} s (expiry {} s)",
        after.as_secs_f64(),
        floodgate_dashboard::EXPIRY.as_secs()
    );
    assert!(gone.is_some(), "dash-b still listed after {after:?}");
    assert!(
        after <= floodgate_dashboard::EXPIRY + Duration::from_secs(2),
        "dash-b listed for {after:?}"
    );
    drop((a, c, w, redis));
}
