//! Test plumbing: backend sets (embedded, or Redis + Kafka + PostgreSQL from the
//! environment), nodes (router + worker) sharing them, requests and tokens.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use floodgate_bus::{KafkaBus, MemoryBus, Outgoing, SharedBus};
use floodgate_core::config::Secret;
use floodgate_core::{AppContext, Backends, Config};
use floodgate_db::Db;
use floodgate_store::{Kv, MemoryStore, RedisStore, SharedStore};
use floodgate_todos::Settings;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const SECRET: &str = "test-secret";
pub const STALENESS: Duration = Duration::from_millis(200);

pub fn required() -> bool {
    std::env::var("FLOODGATE_REQUIRE_SERVICES").as_deref() == Ok("1")
}

pub use floodgate_testkit::{
    env_or_skip as var, fresh_pg_database as fresh_pg, wait_for_some, TempDir,
};

/// One backend set shared by every node of a test, and the config they share.
pub struct Env {
    pub backends: Backends,
    pub config: Config,
    pub real: bool,
    _dir: Option<TempDir>,
}

pub fn test_config() -> Config {
    let mut c = Config::defaults();
    let s = c.settings_mut::<Settings>();
    s.jwt_secret = Some(Secret::new(SECRET));
    s.topic = format!("todos-test-{}", uuid::Uuid::new_v4().simple());
    s.cache_staleness = STALENESS;
    c
}

async fn migrated(store: SharedStore, bus: SharedBus, db: Db) -> Backends {
    db.migrate(&[floodgate_todos::MIGRATIONS])
        .await
        .expect("migrate");
    let b = Backends {
        store,
        bus,
        db,
        migrated: Default::default(),
    };
    b.migrated.store(true, std::sync::atomic::Ordering::Release);
    b
}

/// Logs to the test output (RUST_LOG, default warn) so failures show the server's view.
pub fn logs() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

impl Env {
    /// In-memory store and bus, SQLite in a temporary file.
    pub async fn embedded() -> Env {
        logs();
        let dir = TempDir::new();
        let url = format!("sqlite://{}/fg.db", dir.path().display());
        let db = Db::connect(Some(&url)).await.expect("sqlite");
        let backends = migrated(Arc::new(MemoryStore::new()), Arc::new(MemoryBus::new()), db).await;
        Env {
            backends,
            config: test_config(),
            real: false,
            _dir: Some(dir),
        }
    }

    /// Redis + Kafka (Tansu) + a fresh PostgreSQL database, when all three are configured.
    pub async fn real() -> Option<Env> {
        Self::real_on("FLOODGATE_TEST_REDIS_URL").await
    }

    /// As [`Env::real`] with Redis Cluster as the store.
    pub async fn real_cluster() -> Option<Env> {
        Self::real_on("FLOODGATE_TEST_REDIS_CLUSTER_URL").await
    }

    async fn real_on(redis_var: &str) -> Option<Env> {
        logs();
        let redis = var(redis_var)?;
        let brokers = var("FLOODGATE_TEST_KAFKA_BROKERS")?;
        let pg = var("FLOODGATE_TEST_DATABASE_URL")?;
        let store = RedisStore::connect(&redis).await.expect("redis url");
        store.ping().await.expect("test redis answers");
        let bus = KafkaBus::connect(&brokers).expect("kafka config");
        let db = Db::connect(Some(&fresh_pg(&pg).await))
            .await
            .expect("postgres");
        let backends = migrated(Arc::new(store), Arc::new(bus), db).await;
        let mut config = test_config();
        config.redis_url = Some(redis);
        config.kafka_brokers = Some(brokers);
        Some(Env {
            backends,
            config,
            real: true,
            _dir: None,
        })
    }

    pub fn ctx(&self) -> AppContext {
        AppContext::new(self.config.clone(), self.backends.clone())
    }

    /// A node: router plus its own worker.
    pub fn node(&self) -> Node {
        let ctx = self.ctx();
        let router = floodgate_todos::router(&ctx);
        let stop = CancellationToken::new();
        let worker = tokio::spawn(floodgate_todos::workers(ctx, stop.clone()));
        Node {
            router,
            stop,
            worker: Some(worker),
        }
    }

    /// A router without a worker (for request validation cases).
    pub fn api(&self) -> Router {
        floodgate_todos::router(&self.ctx())
    }

    /// How long to wait for something asynchronous before calling it a failure (not a
    /// speed requirement: a generous liveness bound, longer for a real broker's group join).
    pub fn patience(&self) -> Duration {
        if self.real {
            Duration::from_secs(90)
        } else {
            Duration::from_secs(30)
        }
    }

    pub async fn publish_raw(&self, key: &str, payload: &[u8]) {
        let msg = Outgoing {
            topic: &self.config.settings::<Settings>().topic,
            key: Some(key.as_bytes()),
            payload,
            headers: &[],
        };
        self.backends.bus.publish(msg).await.expect("publish");
    }

    pub async fn publish(&self, cmd: &serde_json::Value) {
        let key = cmd["id"].as_str().expect("command id").to_string();
        self.publish_raw(&key, cmd.to_string().as_bytes()).await;
    }

    /// Publishes [`command`]`(action, id, user, extra)` as a write would.
    pub async fn publish_command(
        &self,
        action: &str,
        id: &str,
        user: &str,
        extra: serde_json::Value,
    ) {
        self.publish(&command(action, id, user, extra)).await;
    }

    pub async fn version(&self) -> u64 {
        floodgate_todos::list_version(&self.ctx())
            .await
            .expect("version")
    }
}

pub struct Node {
    pub router: Router,
    stop: CancellationToken,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl Node {
    /// Stops the worker and waits for it (it finishes its batch first).
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(w) = self.worker.take() {
            tokio::time::timeout(Duration::from_secs(30), w)
                .await
                .expect("worker stops")
                .expect("worker did not panic");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Resp {
    send(router, request(method, uri, token, body)).await
}

/// The request [`call`] sends: as the holder of `token` (if any), with a JSON `body` (if any).
pub fn request(
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    req.body(Body::from(body.unwrap_or("").to_string()))
        .expect("request")
}

/// Sends `req` through `router` and collects the answer.
pub async fn send(router: &Router, req: Request<Body>) -> Resp {
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// PUTs `body` to `uri` as the holder of `token`.
pub async fn put(router: &Router, uri: &str, token: &str, body: &str) -> Resp {
    call(router, Method::PUT, uri, Some(token), Some(body)).await
}

pub async fn get(router: &Router, uri: &str) -> Resp {
    call(router, Method::GET, uri, None, None).await
}

pub fn token(user: &str) -> String {
    floodgate_todos::mint_token(SECRET, user, Duration::from_secs(3600)).expect("mint")
}

/// POSTs a todo as `user` and returns its id.
pub async fn create(router: &Router, user: &str, title: &str) -> String {
    let body = serde_json::json!({"title": title, "description": "d"}).to_string();
    let r = call(
        router,
        Method::POST,
        "/todos",
        Some(&token(user)),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.json()["id"].as_str().expect("id").to_string()
}

/// Waits until GET /todos/{id} finds the todo; the todo.
pub async fn wait_present(env: &Env, router: &Router, id: &str, what: &str) -> serde_json::Value {
    wait_todo(env, router, id, what, |r| r.status == StatusCode::OK).await
}

/// The `field` of every todo in a listed array.
pub fn field_of(list: &serde_json::Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|t| t[field].as_str().expect(field).to_string())
        .collect()
}

/// Waits until GET /todos/{id} (a database read) satisfies `pred`.
pub async fn wait_todo<P>(
    env: &Env,
    router: &Router,
    id: &str,
    what: &str,
    pred: P,
) -> serde_json::Value
where
    P: Fn(&Resp) -> bool,
{
    let uri = format!("/todos/{id}");
    wait_for_some(env.patience(), what, || async {
        let r = get(router, &uri).await;
        if pred(&r) {
            Some(if r.status == StatusCode::OK {
                r.json()
            } else {
                serde_json::Value::Null
            })
        } else {
            None
        }
    })
    .await
}

/// A command as the handlers publish it.
pub fn command(action: &str, id: &str, user: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut c = serde_json::json!({
        "action": action,
        "id": id,
        "user_id": user,
        "requested_at": "2025-01-01T00:00:00Z",
        "command_id": uuid::Uuid::new_v4().to_string(),
    });
    if let (Some(obj), Some(more)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    c
}

/// base64url without padding, for hand-made tokens.
pub fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A bus whose first `lose` publishes reach the broker but report `Unavailable`, as when
/// the acknowledgement is lost (a timeout during a broker pause). Its kind is not
/// "memory", so todo writes publish straight to it even around the in-process bus.
pub struct LostAck {
    pub inner: SharedBus,
    pub lose: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl floodgate_bus::Bus for LostAck {
    fn kind(&self) -> &'static str {
        "lost-ack"
    }
    /// Publishes straight to the bus, as with a broker (no outbox).
    fn in_process(&self) -> bool {
        false
    }
    async fn ping(&self) -> floodgate_bus::BusResult<()> {
        self.inner.ping().await
    }
    async fn publish(&self, msg: Outgoing<'_>) -> floodgate_bus::BusResult<()> {
        self.inner.publish(msg).await?;
        let left = self.lose.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.lose
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(floodgate_bus::BusError::Unavailable("ack lost".into()));
        }
        Ok(())
    }
    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
    ) -> floodgate_bus::BusResult<Box<dyn floodgate_bus::Consumer>> {
        self.inner.subscribe(topic, group).await
    }
    async fn flush(&self) -> floodgate_bus::BusResult<()> {
        self.inner.flush().await
    }
}
