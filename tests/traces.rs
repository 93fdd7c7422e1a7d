//! Trace context across the bus: a todo write sent with a `traceparent` is exported over
//! OTLP as one trace, request → publish → the worker's apply span, whether the command
//! travels through the embedded outbox or through Kafka message headers.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{eventually, free_port, until_status, Killed, TempDir};
use serde_json::Value;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// What a fake OTLP/HTTP collector received: (content type, body) per export call.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn collector() -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                sink.lock().unwrap().push((ct, body));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

struct Node {
    _child: Killed,
    base: String,
    _dir: TempDir,
}

fn floodgate(dir: &TempDir) -> Command {
    let mut c = common::binary();
    c.current_dir(dir.path())
        .env("JWT_SECRET", "trace-secret")
        .env("FLOODGATE_LOG_FORMAT", "text")
        .env("RUST_LOG", "warn");
    c
}

async fn node(endpoint: &str, protocol: &str, extra: &[(&str, String)]) -> Node {
    let dir = TempDir::new();
    let port = free_port();
    let mut cmd = floodgate(&dir);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        // Export every 100 ms instead of every 5 s, so the test need not wait.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    // Owned from here on, so a failed check below still kills the process.
    let node = Node {
        _child: Killed(cmd.spawn().unwrap()),
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let ready = format!("{}/ready", node.base);
    assert!(
        until_status(&http, &ready, 200, Duration::from_secs(30)).await,
        "node did not become ready"
    );
    node
}

fn token(dir: &TempDir) -> String {
    let out = floodgate(dir)
        .args(["token", "--sub", "alice"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// POSTs a todo as part of the caller's trace and waits until it is readable (applied).
async fn traced_write(node: &Node) {
    let http = reqwest::Client::new();
    let jwt = token(&TempDir::new());
    let resp = http
        .post(format!("{}/todos", node.base))
        .bearer_auth(&jwt)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({"title": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/todos/{id}", node.base);
    assert!(
        until_status(&http, &url, 200, Duration::from_secs(20)).await,
        "the write was never applied"
    );
}

/// Every span in the OTLP/JSON export calls received so far.
fn json_spans(got: &Received) -> Vec<Value> {
    let mut spans = Vec::new();
    for (_, body) in got.lock().unwrap().iter() {
        let Ok(doc) = serde_json::from_slice::<Value>(body) else {
            continue;
        };
        for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                spans.extend(ss["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    spans
}

fn find<'a>(spans: &'a [Value], name: &str) -> Option<&'a Value> {
    spans
        .iter()
        .find(|s| s["name"] == name && s["traceId"].as_str() == Some(TRACE))
}

/// Checks request → publish to `topic` → apply form one chain under the caller's span.
async fn assert_one_trace(got: &Received, topic: &str) {
    let complete = eventually(Duration::from_secs(15), || async {
        let spans = json_spans(got);
        find(&spans, "todos.apply").is_some() && find(&spans, "POST /todos").is_some()
    })
    .await;
    let spans = json_spans(got);
    let names: Vec<&Value> = spans.iter().map(|s| &s["name"]).collect();
    assert!(complete, "spans of the trace not exported; got {names:?}");
    let request = find(&spans, "POST /todos").unwrap();
    let publish = find(&spans, &format!("publish {topic}")).unwrap_or_else(|| {
        panic!("no publish span in the caller's trace; got {names:?}");
    });
    let apply = find(&spans, "todos.apply").unwrap();
    assert_eq!(request["parentSpanId"], CALLER_SPAN);
    assert_eq!(publish["parentSpanId"], request["spanId"]);
    assert_eq!(apply["parentSpanId"], publish["spanId"]);
    assert_eq!(apply["kind"], 5, "apply is a consumer span");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_todo_write_is_one_trace_through_the_embedded_outbox() {
    let (endpoint, got) = collector().await;
    let topic = ("KAFKA_TODO_TOPIC", "todo-trace".to_string());
    let node = node(&endpoint, "http/json", &[topic]).await;
    traced_write(&node).await;
    assert_one_trace(&got, "todo-trace").await;
    assert!(got.lock().unwrap()[0].0.starts_with("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_todo_write_is_one_trace_through_kafka_headers() {
    let Some(brokers) = floodgate_testkit::env_or_skip("FLOODGATE_TEST_KAFKA_BROKERS") else {
        return;
    };
    let (endpoint, got) = collector().await;
    // A fresh topic (and so consumer group) per run.
    let topic = format!("todo-trace-{}", uuid::Uuid::new_v4().simple());
    let extra = [
        ("FLOODGATE_KAFKA_BROKERS", brokers),
        ("KAFKA_TODO_TOPIC", topic.clone()),
    ];
    let node = node(&endpoint, "http/json", &extra).await;
    traced_write(&node).await;
    assert_one_trace(&got, &topic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_as_protobuf_by_default() {
    let (endpoint, got) = collector().await;
    let node = node(&endpoint, "http/protobuf", &[]).await;
    traced_write(&node).await;
    let trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&TRACE[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let found = eventually(Duration::from_secs(15), || async {
        got.lock().unwrap().iter().any(|(ct, body)| {
            ct == "application/x-protobuf"
                && contains(body, &trace_id)
                && contains(body, b"todos.apply")
        })
    })
    .await;
    assert!(found, "no protobuf export carrying the caller's trace id");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
