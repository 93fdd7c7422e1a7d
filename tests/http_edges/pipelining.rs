//! A client that pipelines and never reads must cost the node a small, fixed amount of
//! memory, on one connection and on fifty. Measured on the real binary's resident set.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::{binary, free_port, healthy, TempDir};

const REQUESTS: usize = 20_000;
const BUDGET_PER_CONNECTION_KB: i64 = 1024;

use crate::common::Killed as Node;

fn rss_kb(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Opens `n` connections, writes 20,000 pipelined requests on each (as much as the server
/// takes in 2 s) and keeps them open without reading a byte.
async fn flood(addr: &str, n: usize) -> Vec<TcpStream> {
    let batch = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(REQUESTS);
    let mut open = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..n {
        let s = TcpStream::connect(addr).await.expect("connect");
        let (r, mut w) = s.into_split();
        let batch = batch.clone();
        writers.push(tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), w.write_all(&batch)).await;
            w
        }));
        open.push(r);
    }
    let mut conns = Vec::new();
    for (r, w) in open.into_iter().zip(writers) {
        let w = w.await.expect("writer");
        conns.push(r.reunite(w).expect("same stream"));
    }
    conns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_pipelines_cost_a_fixed_amount_per_connection() {
    let dir = TempDir::new();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = binary()
        .current_dir(dir.path())
        .args(["serve", "--listen", &addr])
        .env("FLOODGATE_IDLE_TIMEOUT_MS", "60000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn floodgate");
    let node = Node(child);
    let pid = node.0.id();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    assert!(healthy(&http, &base, Duration::from_secs(30)).await);
    // Warm up: the document and the allocator's arenas are in place before measuring.
    for _ in 0..20 {
        let r = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let mut held = Vec::new();
    let mut before = rss_kb(pid);
    for n in [1usize, 50] {
        held.extend(flood(&addr, n).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kb(pid);
        let per = (after - before) / n as i64;
        println!(
            "{n} unread pipelining connection(s): RSS {before} kB -> {after} kB, {per} kB per connection"
        );
        assert!(
            per < BUDGET_PER_CONNECTION_KB,
            "{per} kB per connection (budget {BUDGET_PER_CONNECTION_KB} kB)"
        );
        before = after;
    }
    // Everyone else is still served.
    let r = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(held);
}
