//! Each connection deadline, measured: headers from their first byte, bodies (408, then
//! close), idle keep-alive, and the connection cap filled by slow bodies.

use std::time::{Duration, Instant};

use floodgate::Running;
use floodgate_core::Config;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{all_services_config, get_with, start, url, TempDir};
use crate::{read_response, read_to_close};

const GET: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
/// Headers of a request whose 1,000-byte body will come slowly.
const SLOW_POST: &[u8] = b"POST /abacus/number HTTP/1.1\r\nHost: x\r\nX-API-Key: k1\r\n\
Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";

fn config(dir: &TempDir, header_ms: u64, body_ms: u64, idle_ms: u64) -> Config {
    let mut c = all_services_config(dir, "s");
    c.header_timeout = Duration::from_millis(header_ms);
    c.body_timeout = Duration::from_millis(body_ms);
    c.idle_timeout = Duration::from_millis(idle_ms);
    c
}

/// A node with these timeouts (ms), and a connection to it (the node's files live as long
/// as the dir).
async fn connected(header_ms: u64, body_ms: u64, idle_ms: u64) -> (TempDir, Running, TcpStream) {
    let dir = TempDir::new();
    let node = start(config(&dir, header_ms, body_ms, idle_ms)).await;
    let s = TcpStream::connect(node.addr).await.unwrap();
    (dir, node, s)
}

/// Prints the measured figure and checks it is in [lo, hi) ms.
fn within(what: &str, took: Duration, lo_ms: u64, hi_ms: u64) {
    println!("{what}: after {took:?}");
    assert!(
        took >= Duration::from_millis(lo_ms) && took < Duration::from_millis(hi_ms),
        "{what}: after {took:?}, expected {lo_ms}..{hi_ms} ms"
    );
}

/// Sends one byte of body every `every` until the server stops taking them.
async fn drip<W: AsyncWrite + Unpin>(s: &mut W, every: Duration, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        tokio::time::sleep(every).await;
        if s.write_all(b" ").await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_timed_from_their_first_byte() {
    let (_dir, node, mut s) = connected(400, 5_000, 5_000).await;
    s.write_all(GET).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Waiting between requests longer than the header timeout is fine: that is idle time.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    s.write_all(GET).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Headers trickled one byte every 50 ms are cut 400 ms after their first byte.
    let started = Instant::now();
    for b in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnopqrstuvwxyz" {
        if s.write_all(&[*b]).await.is_err() || started.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(closed.is_some(), "never closed");
    within("slow headers cut (header timeout 400 ms)", took, 380, 1_500);
    node.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_and_are_closed() {
    let (_dir, node, mut s) = connected(5_000, 600, 5_000).await;
    let started = Instant::now();
    s.write_all(SLOW_POST).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let dripping = tokio::spawn(async move {
        drip(&mut w, Duration::from_millis(100), Duration::from_secs(5)).await;
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::AsyncReadExt;
        let _ = r.read_to_end(&mut got).await;
    })
    .await;
    let took = started.elapsed();
    dripping.abort();
    let text = String::from_utf8_lossy(&got);
    assert!(closed.is_ok(), "never closed; got {text:?}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text:?}"
    );
    assert!(
        text.ends_with(r#"{"detail":"Request body not received in time"}"#),
        "{text:?}"
    );
    within(
        "slow body answered 408 and closed (body timeout 600 ms)",
        took,
        580,
        2_000,
    );
    // Nothing was added.
    let http = reqwest::Client::new();
    let sum = get_with(&http, &url(&node, "/abacus/sum"), ("x-api-key", "k1"))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(sum["current_sum"], 0, "{sum}");
    node.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_is_closed_after_the_idle_timeout() {
    // The header timeout is shorter on purpose: it must not cut idle connections.
    let (_dir, node, mut s) = connected(300, 300, 1_500).await;
    s.write_all(GET).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let (rest, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(rest.is_empty());
    let closed = closed.expect("idle connection never closed");
    within(
        "idle keep-alive closed (idle timeout 1500 ms)",
        closed,
        1_400,
        2_500,
    );
    node.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_filling_the_cap_lock_nobody_out_for_long() {
    let dir = TempDir::new();
    let mut cfg = config(&dir, 5_000, 1_000, 10_000);
    cfg.max_connections = 20;
    let node = start(cfg).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(node.addr).await.unwrap();
        s.write_all(SLOW_POST).await.unwrap();
        slow.push(tokio::spawn(async move {
            drip(&mut s, Duration::from_millis(200), Duration::from_secs(8)).await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(8))
        .build()
        .unwrap();
    let resp = http.get(url(&node, "/health")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    within(
        "cap full of slow bodies: a normal client served (body timeout 1000 ms)",
        took,
        500,
        2_500,
    );
    for t in slow {
        t.abort();
    }
    node.shutdown.cancel();
}
