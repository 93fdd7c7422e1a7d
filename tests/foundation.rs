//! The server core end to end: shared routes, limits, readiness through backend outages,
//! and graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use floodgate_core::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_node_serves_the_shared_routes() {
    let dir = TempDir::new();
    let node = start(embedded_config(&dir)).await;
    let http = reqwest::Client::new();

    let health = http.get(url(&node, "/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "OK");

    // Migrations run in the background; readiness waits for them.
    let ready = until_ok(Duration::from_secs(10), || http.get(url(&node, "/ready"))).await;
    assert!(ready, "/ready never became 200");
    let body = get_json(&http, &url(&node, "/ready")).await;
    assert_eq!(body["checks"]["store"]["backend"], "memory");
    assert_eq!(body["checks"]["bus"]["backend"], "memory");
    assert_eq!(body["checks"]["database"]["backend"], "sqlite");

    let openapi = get_json(&http, &url(&node, "/openapi.json")).await;
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));

    let docs = http.get(url(&node, "/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "Swagger UI served from the binary"
    );

    // A raw path with an id must not become a metrics label: only templates are.
    let _ = http
        .get(url(&node, "/no/such/path/12345"))
        .send()
        .await
        .unwrap();
    let metrics = http.get(url(&node, "/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("http_requests_total{method=\"GET\",handler=\"/health\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(!text.contains("12345"), "raw paths leaked into labels");

    stop(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_and_request_ids_are_echoed() {
    let dir = TempDir::new();
    let node = start(embedded_config(&dir)).await;
    let http = reqwest::Client::new();
    let big = vec![b'a'; 64 * 1024 + 1];
    let resp = http
        .post(url(&node, "/health"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // The unread body makes the connection unusable; the client must be told to drop it.
    assert_eq!(resp.headers()["connection"], "close");

    let resp = get_with(&http, &url(&node, "/health"), ("x-request-id", "abc-123")).await;
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    // Without one from the client, only failures get an id (they are the ones logged).
    let resp = http
        .get(url(&node, "/status/not-a-job"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    node.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_senders_are_cut_off() {
    let dir = TempDir::new();
    let mut cfg = embedded_config(&dir);
    cfg.header_timeout = Duration::from_millis(300);
    let node = start(cfg).await;
    let addr = node.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Half a request line, then silence (slowloris).
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut buf = [0u8; 512];
        let started = std::time::Instant::now();
        // The server must close (read 0 or an error response) well before our 10 s read timeout.
        let n = s.read(&mut buf).unwrap_or(0);
        (n, started.elapsed())
    })
    .await
    .unwrap();
    assert!(
        closed.1 < Duration::from_secs(5),
        "connection held for {:?}",
        closed.1
    );
    node.shutdown.cancel();
}

/// How a test takes a backend away: kill -9 and restart (Redis keeps nothing we need), or
/// pause and resume (Tansu; see `common::tansu` for why it is not killed).
enum Outage {
    Kill,
    Pause,
}

impl Outage {
    fn begin(&self, server: &mut Process) {
        match self {
            Outage::Kill => server.kill(),
            Outage::Pause => server.pause(),
        }
    }

    /// Brings the server back: restarted after a kill, resumed after a pause.
    fn end(&self, server: &mut Process) {
        match self {
            Outage::Kill => server.restart(),
            Outage::Pause => server.resume(),
        }
    }
}

/// `/ready` is 200 with the backend up, 503 naming `check` while it is away (liveness
/// stays 200), and 200 again once it is back, without restarting the node.
async fn ready_through_outage(
    cfg: Config,
    server: &mut Process,
    outage: Outage,
    check: &str,
    backend: &str,
) {
    let node = start(cfg).await;
    let http = reqwest::Client::new();
    let u = url(&node, "/ready");
    let t = Duration::from_secs(30);
    assert!(
        until_status(&http, &u, 200, t).await,
        "/ready never 200 with {backend} up"
    );
    assert_eq!(
        get_json(&http, &u).await["checks"][check]["backend"],
        backend
    );

    outage.begin(server);
    assert!(
        until_status(&http, &u, 503, t).await,
        "/ready stayed 200 with {backend} down"
    );
    let body = get_json(&http, &u).await;
    assert_eq!(body["failing"], serde_json::json!([check]), "{body}");
    assert_eq!(
        http.get(url(&node, "/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    outage.end(server);
    assert!(
        until_status(&http, &u, 200, t).await,
        "/ready did not recover after {backend} came back"
    );
    node.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_redis_going_away_and_coming_back() {
    let Some(mut redis) = redis() else { return };
    let dir = TempDir::new();
    let mut cfg = embedded_config(&dir);
    cfg.redis_url = Some(redis.redis_url());
    ready_through_outage(cfg, &mut redis, Outage::Kill, "store", "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_broker_going_away_and_coming_back() {
    let dir = TempDir::new();
    let Some(mut broker) = tansu(&dir) else {
        return;
    };
    let mut cfg = embedded_config(&dir);
    cfg.kafka_brokers = Some(format!("127.0.0.1:{}", broker.port));
    ready_through_outage(cfg, &mut broker, Outage::Pause, "bus", "kafka").await;
}
