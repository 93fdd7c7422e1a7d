//! Backends that are down: 503 with Retry-After, and nothing left behind. No services
//! needed (closed ports), so these always run. Plus the OpenAPI description.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::StatusCode;
use floodgate_bus::{KafkaBus, KafkaConfig, MemoryBus};
use floodgate_store::{Kv, Leases, MemoryStore, RedisStore};

use common::{App, Setup, TestStore};

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_down_is_503_and_leaves_nothing_behind() {
    let mut cfg = KafkaConfig::new(&format!("127.0.0.1:{}", closed_port()));
    cfg.message_timeout = Duration::from_secs(1);
    let setup = Setup {
        store: TestStore::wrap(Arc::new(MemoryStore::new())),
        bus: Arc::new(KafkaBus::connect_with(cfg).expect("connect needs no broker")),
        memory_bus: None,
        patience: Duration::from_secs(5),
    };
    let app = App::new(&setup, |_, _| {}).await;

    let r = app.post("/generate?n=10", "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    assert!(r.headers.contains_key(RETRY_AFTER));
    assert!(r.json["detail"].is_string(), "{}", r.raw);

    // The pending record was written first, then removed again; the queue slot is back.
    let written = setup.store.written();
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].starts_with("primes:status:"));
    assert_eq!(setup.store.get(&written[0]).await.unwrap(), None);
    let pool = format!("primes:queue:{}", app.topic());
    assert_eq!(setup.store.lease_count(&pool).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_is_503() {
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{}/0", closed_port()))
        .await
        .expect("connect succeeds while Redis is down");
    let bus = MemoryBus::new();
    let setup = Setup {
        store: TestStore::wrap(Arc::new(store)),
        bus: Arc::new(bus.clone()),
        memory_bus: Some(bus.clone()),
        patience: Duration::from_secs(5),
    };
    let app = App::new(&setup, |_, _| {}).await;

    let r = app.post("/generate?n=10", "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    assert!(r.headers.contains_key(RETRY_AFTER));
    assert_eq!(
        bus.retained(app.topic()),
        0,
        "no job published without a record"
    );

    let r = app.status(&uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    assert!(r.headers.contains_key(RETRY_AFTER));
}

#[test]
fn openapi_describes_both_routes() {
    let doc = serde_json::to_value(floodgate_primes::openapi()).unwrap();
    let paths = &doc["paths"];
    assert!(paths["/generate"]["post"].is_object(), "{paths}");
    assert!(paths["/status/{request_id}"]["get"].is_object(), "{paths}");
    let responses = &paths["/generate"]["post"]["responses"];
    for code in ["200", "400", "422", "503"] {
        assert!(responses[code].is_object(), "missing {code}: {responses}");
    }
    assert!(paths["/status/{request_id}"]["get"]["responses"]["404"].is_object());
}
