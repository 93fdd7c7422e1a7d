//! Hostile input against the real binary: random methods, paths, headers and bodies on every
//! route (proptest), and malformed HTTP framing over raw sockets. Nothing may answer 5xx,
//! nothing may panic, and the node must be healthy afterwards.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

use common::{binary, free_port, Killed, TempDir};

const JWT_SECRET: &str = "fuzz-secret";
const TEMPLATES: &[&str] = &[
    "/",
    "/queue",
    "/generate",
    "/status/{}",
    "/todos",
    "/todos/{}",
    "/abacus/sum",
    "/abacus/number",
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/docs/",
    "/dashboard",
    // /dashboard/events is left out: it streams until the client leaves.
    "/{}",
    "/{}/{}",
];
const ODD_METHODS: &[&str] = &["PATCH", "HEAD", "OPTIONS", "TRACE", "BREW"];

/// Mostly the methods the routes take, so most cases reach a handler.
fn method() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("GET"),
        4 => Just("POST"),
        2 => Just("PUT"),
        1 => Just("DELETE"),
        1 => prop::sample::select(ODD_METHODS),
    ]
}

struct Node {
    child: Killed,
    addr: SocketAddr,
    log: std::path::PathBuf,
    _dir: TempDir,
}

fn start_node() -> Node {
    let dir = TempDir::new();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log = dir.path().join("stderr.log");
    let child = binary()
        .current_dir(dir.path())
        .args(["serve", "--listen", &addr.to_string()])
        .env("ABACUS_API_KEYS", "k1")
        .env("JWT_SECRET", JWT_SECRET)
        .env("FLOODGATE_HEADER_TIMEOUT_MS", "1000")
        .env("FLOODGATE_BODY_TIMEOUT_MS", "1000")
        .env("FLOODGATE_LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn floodgate");
    let node = Node {
        child: Killed(child),
        addr,
        log,
        _dir: dir,
    };
    let started = Instant::now();
    while exchange(node.addr, get("/ready").as_bytes()).0 != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node never ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    node
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

/// Sends raw bytes, reads until the server closes (at most 5 s): the first status code,
/// if any, and everything read.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Option<u16>, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (None, Vec::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    (status_of(&got), got)
}

fn status_of(resp: &[u8]) -> Option<u16> {
    let line = resp.split(|b| *b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Every status line in a (possibly pipelined) answer.
fn statuses(resp: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(resp);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

fn token() -> String {
    floodgate_todos::mint_token(JWT_SECRET, "fuzzer", Duration::from_secs(600)).unwrap()
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._~-]{0,12}",
        Just(uuid::Uuid::new_v4().to_string()),
        "%[0-9A-F]{2}[a-z]{0,4}",
        Just("..".to_string()),
        Just(String::new()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::sample::select(TEMPLATES),
        segment(),
        segment(),
        "(\\?[a-z]{1,3}=[a-zA-Z0-9%-]{0,8}){0,2}",
    )
        .prop_map(|(t, a, b, q)| t.replacen("{}", &a, 1).replacen("{}", &b, 1) + &q)
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(-0.0)),
        Just(json!(u64::MAX)),
        "\\PC{0,20}".prop_map(Value::String),
        Just(Value::String("\u{0}".into())),
        Just(Value::String("x".repeat(600))),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(
                        &["n", "number", "title", "description", "completed", "x"][..]
                    ),
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
        Just(br#"{"number":-0}"#.to_vec()),
        Just(br#"{"title":"a\ud800"}"#.to_vec()),
        Just(br#"{"n":1e400}"#.to_vec()),
    ]
}

fn headers() -> impl Strategy<Value = Vec<String>> {
    let one = prop_oneof![
        3 => Just("Content-Type: application/json".to_string()),
        1 => "Content-Type: [a-z/+;= -]{0,20}".prop_map(|s| s),
        2 => Just("X-API-Key: k1".to_string()),
        1 => "X-API-Key: [ -~]{0,20}".prop_map(|s| s),
        2 => Just(format!("Authorization: Bearer {}", token())),
        1 => "Authorization: [ -~]{0,40}".prop_map(|s| s),
        1 => "Idempotency-Key: [ -~]{0,80}".prop_map(|s| s),
        1 => "X-Request-Id: [ -~]{0,80}".prop_map(|s| s),
        1 => "Accept: [a-z/*,;=.0-9 ]{0,30}".prop_map(|s| s),
        1 => "X-[A-Za-z-]{1,10}: [ -~]{0,30}".prop_map(|s| s),
    ];
    prop::collection::vec(one, 0..5)
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    (method(), path(), headers(), body()).prop_map(|(m, p, hs, b)| {
        let mut r = format!("{m} {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for h in hs {
            r.push_str(h.trim_end());
            r.push_str("\r\n");
        }
        r.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
        let mut bytes = r.into_bytes();
        bytes.extend_from_slice(&b);
        bytes
    })
}

fn assert_healthy(node: &mut Node) {
    assert!(node.child.try_wait().unwrap().is_none(), "the node exited");
    assert_eq!(exchange(node.addr, get("/health").as_bytes()).0, Some(200));
    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
    assert!(!log.contains("panicked"), "a panic was logged:\n{log}");
}

#[test]
fn random_requests_on_every_route_never_get_a_5xx() {
    const CASES: u32 = 1000;
    let mut node = start_node();
    let addr = node.addr;
    let mut runner = TestRunner::new(RunnerConfig {
        cases: CASES,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let started = Instant::now();
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&request(), |req| {
            let (status, got) = exchange(addr, &req);
            if let Some(s) = status {
                *seen.lock().unwrap().entry(s).or_default() += 1;
            }
            let shown = String::from_utf8_lossy(&req).to_string();
            let status = status
                .ok_or_else(|| TestCaseError::fail(format!("no answer to {shown:?}: {got:?}")))?;
            prop_assert!(
                status < 500,
                "{status} for {shown:?}: {}",
                String::from_utf8_lossy(&got)
            );
            Ok(())
        })
        .unwrap();
    let seen = seen.into_inner().unwrap();
    println!(
        "{CASES} random requests in {:?}: {seen:?}",
        started.elapsed()
    );
    // The cases reached handlers, not just the router's refusals.
    assert!(seen.keys().any(|s| (200..300).contains(s)), "{seen:?}");
    assert!(seen.keys().any(|s| [400, 401, 422].contains(s)), "{seen:?}");
    assert_healthy(&mut node);
}

#[test]
fn malformed_framing_never_gets_a_5xx() {
    let mut node = start_node();
    let addr = node.addr;
    let post = |extra: &str, body: &str| {
        format!("POST /abacus/number HTTP/1.1\r\nHost: x\r\nX-API-Key: k1\r\n{extra}\r\n{body}")
            .into_bytes()
    };
    let many_headers: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big_header = format!("X-Big: {}\r\n", "a".repeat(100 * 1024));
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70 * 1024));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "duplicate differing Content-Length",
            post("Content-Length: 5\r\nContent-Length: 6\r\n", "{}   "),
        ),
        (
            "duplicate equal Content-Length",
            post("Content-Length: 2\r\nContent-Length: 2\r\n", "{}"),
        ),
        (
            "Content-Length list",
            post("Content-Length: 2, 3\r\n", "{}"),
        ),
        (
            "negative Content-Length",
            post("Content-Length: -1\r\n", "{}"),
        ),
        (
            "huge Content-Length",
            post("Content-Length: 99999999999999999999\r\n", "{}"),
        ),
        (
            "Content-Length and chunked",
            post(
                "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
                "2\r\n{}\r\n0\r\n\r\n",
            ),
        ),
        (
            "chunk size not hex",
            post("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n"),
        ),
        (
            "chunk size overflow",
            post(
                "Transfer-Encoding: chunked\r\n",
                "ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
            ),
        ),
        (
            "chunk longer than said",
            post(
                "Transfer-Encoding: chunked\r\n",
                "1\r\n{\"number\":1}\r\n0\r\n\r\n",
            ),
        ),
        (
            "chunk without CRLF",
            post("Transfer-Encoding: chunked\r\n", "2\r\n{}0\r\n\r\n"),
        ),
        (
            "chunk extension junk",
            post(
                "Transfer-Encoding: chunked\r\n",
                "2;;;=\"\r\n{}\r\n0\r\n\r\n",
            ),
        ),
        (
            "chunked then closed early",
            post("Transfer-Encoding: chunked\r\n", "5\r\n{\"n"),
        ),
        (
            "chunked not last",
            post(
                "Transfer-Encoding: chunked, gzip\r\n",
                "2\r\n{}\r\n0\r\n\r\n",
            ),
        ),
        (
            "unknown transfer coding",
            post("Transfer-Encoding: gzip\r\n", "{}"),
        ),
        (
            "bad trailer",
            post("Transfer-Encoding: chunked\r\n", "0\r\nBad Trailer\r\n\r\n"),
        ),
        (
            "500 headers",
            format!("GET /health HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
        ),
        (
            "100 KiB header",
            format!("GET /health HTTP/1.1\r\nHost: x\r\n{big_header}\r\n").into_bytes(),
        ),
        ("70 KiB URI", long_uri.into_bytes()),
        (
            "obs-fold",
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n".to_vec(),
        ),
        (
            "header without colon",
            b"GET /health HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
        ),
        (
            "NUL in header",
            b"GET /health HTTP/1.1\r\nHost: x\0y\r\n\r\n".to_vec(),
        ),
        (
            "space before colon",
            b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(),
        ),
        ("HTTP/0.9", b"GET /health\r\n\r\n".to_vec()),
        (
            "HTTP/9.9",
            b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        (
            "absolute URI",
            b"GET http://evil/health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "asterisk",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("bare LF", b"GET /health HTTP/1.1\nHost: x\n\n".to_vec()),
        (
            "expect continue",
            post(
                "Expect: 100-continue\r\nContent-Length: 12\r\n",
                "{\"number\":1}",
            ),
        ),
        (
            "expect junk",
            post("Expect: 999-nope\r\nContent-Length: 2\r\n", "{}"),
        ),
        (
            "garbage after a request",
            [get("/health").as_bytes(), b"\x00\xff\r\n\r\n"].concat(),
        ),
        (
            "upgrade websocket",
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
                .to_vec(),
        ),
        ("only CRLFs", b"\r\n\r\n\r\n\r\n".to_vec()),
        ("binary", (0u8..=255).collect()),
    ];
    let started = Instant::now();
    // In parallel: some wait out the header or body deadline (1 s).
    let results: Vec<(&str, Vec<u16>)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(name, bytes)| s.spawn(move || (*name, statuses(&exchange(addr, bytes).1))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, codes) in &results {
        println!("{name}: {codes:?}");
        assert!(codes.iter().all(|c| *c < 500), "{name}: {codes:?}");
    }
    let flood = results.iter().find(|(n, _)| *n == "500 headers").unwrap();
    assert_eq!(flood.1, [431], "a header flood");
    println!("{} framing cases in {:?}", results.len(), started.elapsed());
    let started = Instant::now();

    // Random bytes after a valid request line, and random splits of a valid request.
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 100,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..200), |junk| {
            let bytes = [b"POST /todos HTTP/1.1\r\n".as_slice(), &junk, b"\r\n\r\n"].concat();
            let (_, got) = exchange(addr, &bytes);
            let codes = statuses(&got);
            prop_assert!(codes.iter().all(|c| *c < 500), "{codes:?} for {junk:?}");
            Ok(())
        })
        .unwrap();
    println!("100 junk request heads in {:?}", started.elapsed());
    assert_healthy(&mut node);
}
