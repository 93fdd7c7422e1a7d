//! Parking, end to end on real sockets: a parked connection is served again (also with a
//! request head split around the park, and with requests pipelined while parked), its
//! idle deadline still holds, and a drain closes parked connections at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::park::PARK_DELAY;
use super::state::ConnState;
use super::{Conn, Drain, Limits, Watched};
use crate::http::server::{http1_builder, serve, ServerOptions};

/// Size of `/big`: more than the socket buffers of both ends hold.
const BIG: usize = 16 << 20;

fn router() -> Router {
    Router::new()
        .route(
            "/{name}",
            get(|Path(name): Path<String>| async move { name }),
        )
        .route("/big", get(|| async { vec![b'x'; BIG] }))
        .route(
            "/stream",
            get(|| async {
                let chunks = futures::stream::iter(["first,", "last"]).then(|c| async move {
                    if c == "last" {
                        tokio::time::sleep(PARK_DELAY * 4).await;
                    }
                    Ok::<_, std::convert::Infallible>(c)
                });
                axum::body::Body::from_stream(chunks)
            }),
        )
        .route(
            "/slow/{ms}",
            get(|Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "slow"
            }),
        )
}

fn get_req(name: &str) -> String {
    format!("GET /{name} HTTP/1.1\r\nHost: x\r\n\r\n")
}

const LIMITS: Limits = Limits {
    header: Duration::from_secs(5),
    body: Duration::from_secs(5),
    idle: Duration::from_secs(20),
};

/// Connections served as `serve` serves them, with their states sent out as they come.
struct Node {
    addr: SocketAddr,
    states: mpsc::UnboundedReceiver<Arc<ConnState>>,
    drain: Drain,
}

async fn node(limits: Limits) -> Node {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, states) = mpsc::unbounded_channel();
    let drain = Drain::new();
    let watch = drain.clone();
    let http = Arc::new(http1_builder());
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let (conn, state) = Conn::new(stream, peer, router(), http.clone(), watch.watch());
            let _ = tx.send(state.clone());
            tokio::spawn(Watched::new(conn, state, limits));
        }
    });
    Node {
        addr,
        states,
        drain,
    }
}

impl Node {
    async fn connect(&mut self) -> (TcpStream, Arc<ConnState>) {
        let s = TcpStream::connect(self.addr).await.unwrap();
        let state = self.states.recv().await.unwrap();
        (s, state)
    }
}

/// One connection to a node of its own.
/// A connection under `LIMITS` that has sent `GET {path}`.
async fn requested(path: &str) -> (TcpStream, Arc<ConnState>) {
    let (mut s, state) = connected(LIMITS).await;
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    (s, state)
}

/// `LIMITS` with `edit` applied.
fn limits_with(edit: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = LIMITS;
    edit(&mut limits);
    limits
}

async fn connected(limits: Limits) -> (TcpStream, Arc<ConnState>) {
    node(limits).await.connect().await
}

/// Waits (up to 3 park delays and then some, for a busy machine) until the connection is
/// parked.
async fn until_parked(state: &ConnState) {
    let started = Instant::now();
    while !state.is_parked() {
        assert!(
            started.elapsed() < PARK_DELAY * 3 + Duration::from_secs(2),
            "connection never parked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `n` whole responses (each with a Content-Length) and returns their bodies.
async fn bodies(s: &mut TcpStream, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < n {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                out.push(text[end + 4..end + 4 + len].to_string());
                got.drain(..end + 4 + len);
                continue;
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        let k = read.expect("an answer in time").expect("read");
        assert!(k > 0, "closed before {n} answers: {text:?}");
        got.extend_from_slice(&buf[..k]);
    }
    assert!(got.is_empty(), "more than {n} answers: {got:?}");
    out
}

/// Checks a deadline was kept: `took` in [lo, hi) ms.
fn within(what: &str, took: Duration, lo_ms: u64, hi_ms: u64) {
    let (lo, hi) = (Duration::from_millis(lo_ms), Duration::from_millis(hi_ms));
    assert!(took >= lo && took < hi, "{what}: {took:?}");
}

/// Sends `GET /name` and checks the answer is `name`.
async fn ask(s: &mut TcpStream, name: &str) {
    s.write_all(get_req(name).as_bytes()).await.unwrap();
    assert_eq!(bodies(s, 1).await, [name]);
}

/// Waits until the connection is parked, then asks on it.
async fn once_parked_ask(s: &mut TcpStream, state: &ConnState, name: &str) {
    until_parked(state).await;
    ask(s, name).await;
}

/// How long until the server closes the connection, sending nothing more.
async fn closed_after(s: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(limit, s.read(&mut buf)).await;
    let n = read.expect("closed in time").unwrap_or(0);
    assert_eq!(n, 0, "sent {:?}", String::from_utf8_lossy(&buf[..n]));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_connection_is_served_again() {
    let (mut s, state) = connected(LIMITS).await;
    // Nothing sent yet: no hyper state.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(state.is_parked());
    ask(&mut s, "one").await;
    assert!(!state.is_parked());
    once_parked_ask(&mut s, &state, "two").await;
    once_parked_ask(&mut s, &state, "three").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_split_around_a_park_is_served_whole() {
    let (mut s, state) = connected(LIMITS).await;
    // The first half of the second request comes with the first: hyper has read it when
    // the connection is parked, and the next hyper connection must read it again.
    let second = get_req("second");
    let (second_a, second_b) = second.split_at(9);
    let first = get_req("first") + second_a;
    s.write_all(first.as_bytes()).await.unwrap();
    assert_eq!(bodies(&mut s, 1).await, ["first"]);
    until_parked(&state).await;
    s.write_all(second_b.as_bytes()).await.unwrap();
    assert_eq!(bodies(&mut s, 1).await, ["second"]);
    // A head begun on a parked connection and finished after a park delay.
    until_parked(&state).await;
    let third = get_req("third");
    let (third_a, third_b) = third.split_at(12);
    s.write_all(third_a.as_bytes()).await.unwrap();
    tokio::time::sleep(PARK_DELAY * 2).await;
    s.write_all(third_b.as_bytes()).await.unwrap();
    assert_eq!(bodies(&mut s, 1).await, ["third"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pipelined_to_a_parked_connection_are_answered_in_order() {
    let (mut s, state) = connected(LIMITS).await;
    ask(&mut s, "warm").await;
    until_parked(&state).await;
    let pipelined = get_req("slow/200") + &get_req("one") + &get_req("two");
    s.write_all(pipelined.as_bytes()).await.unwrap();
    assert_eq!(bodies(&mut s, 3).await, ["slow", "one", "two"]);
    // Parked again after answering all three, and still served.
    once_parked_ask(&mut s, &state, "again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_connection_is_closed_at_its_idle_deadline() {
    let (mut s, state) = connected(limits_with(|l| l.idle = Duration::from_millis(2_500))).await;
    ask(&mut s, "one").await;
    let answered = Instant::now();
    until_parked(&state).await;
    closed_after(&mut s, Duration::from_secs(10)).await;
    let idle = answered.elapsed();
    within(
        "closed after the answer (idle timeout 2.5 s)",
        idle,
        2_400,
        3_500,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_at_the_header_deadline() {
    let (mut s, state) = connected(limits_with(|l| l.header = Duration::from_millis(400))).await;
    let took = closed_after(&mut s, Duration::from_secs(5)).await;
    assert!(state.is_parked(), "hyper was built for a silent connection");
    within("closed after (header timeout 400 ms)", took, 300, 1_500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_closes_parked_connections_at_once() {
    let mut node = node(LIMITS).await;
    let (mut used, used_state) = node.connect().await;
    ask(&mut used, "one").await;
    until_parked(&used_state).await;
    let (mut silent, _) = node.connect().await;
    node.drain.start();
    for s in [&mut used, &mut silent] {
        let took = closed_after(s, Duration::from_secs(5)).await;
        assert!(took < Duration::from_millis(500), "closed after {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_parked_connections_and_finishes_requests_under_way() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let opts = ServerOptions {
        shutdown_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    };
    let server = tokio::spawn(serve(listener, router(), opts, shutdown.clone()));
    let mut parked = TcpStream::connect(addr).await.unwrap();
    ask(&mut parked, "one").await;
    tokio::time::sleep(PARK_DELAY * 3).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(get_req("slow/600").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    shutdown.cancel();
    for s in [&mut parked, &mut silent] {
        let took = closed_after(s, Duration::from_secs(5)).await;
        assert!(took < Duration::from_millis(500), "closed after {took:?}");
    }
    // The request under way is answered, then its connection closes and the server ends.
    assert_eq!(bodies(&mut busy, 1).await, ["slow"]);
    closed_after(&mut busy, Duration::from_secs(5)).await;
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server ended")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_not_parked_while_its_answer_streams() {
    let (mut s, state) = requested("/stream").await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the stream in time")
            .unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        // Between the chunks (4 park delays apart) hyper still holds the answer.
        if got.windows(6).any(|w| w == b"first,") && !got.ends_with(b"0\r\n\r\n") {
            tokio::time::sleep(PARK_DELAY * 2).await;
            assert!(!state.is_parked(), "parked with its answer half sent");
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("first,") && text.contains("last"), "{text:?}");
    assert!(
        !text.to_ascii_lowercase().contains("connection: close"),
        "{text:?}"
    );
    once_parked_ask(&mut s, &state, "after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_client_reads_late_arrives_whole() {
    let (mut s, state) = requested("/big").await;
    // Not read for a while: the socket fills and the rest waits with hyper.
    tokio::time::sleep(PARK_DELAY * 4).await;
    assert!(!state.is_parked(), "parked with its answer half sent");
    let mut got = Vec::with_capacity(BIG + 1024);
    let mut buf = vec![0u8; 1 << 16];
    let whole = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the answer in time")
            .unwrap();
        assert!(n > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if got.len() >= end + 4 + BIG {
                break got.len() - end - 4;
            }
        }
    };
    assert_eq!(whole, BIG);
    once_parked_ask(&mut s, &state, "after").await;
}
