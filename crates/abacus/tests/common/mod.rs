//! Test plumbing: backends from the environment, per-test key prefixes, nodes served on
//! loopback, and a small client.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use floodgate_core::config::Secret;
use floodgate_core::{AppContext, Backends, Config};
use floodgate_store::{Kv, MemoryStore, RedisStore, SharedStore};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

pub use floodgate_testkit::{Faults, TestStore};

pub const REDIS_VAR: &str = "FLOODGATE_TEST_REDIS_URL";
pub const REDIS_CLUSTER_VAR: &str = "FLOODGATE_TEST_REDIS_CLUSTER_URL";
pub const KEY1: &str = "key-one";
pub const KEY2: &str = "key-two";

/// Where a test's nodes keep the sum.
pub enum Backend {
    /// One store shared by every node of the test.
    Memory(SharedStore),
    /// A Redis URL: every node gets its own connection, as separate processes would.
    Redis(String),
}

/// One test's backend and key prefix.
pub struct Env {
    backend: Backend,
    prefix: String,
}

impl Env {
    pub fn memory() -> Env {
        Env::with(Backend::Memory(Arc::new(MemoryStore::new())))
    }

    pub fn redis() -> Option<Env> {
        floodgate_testkit::env_or_skip(REDIS_VAR).map(|u| Env::with(Backend::Redis(u)))
    }

    pub fn redis_cluster() -> Option<Env> {
        floodgate_testkit::env_or_skip(REDIS_CLUSTER_VAR).map(|u| Env::with(Backend::Redis(u)))
    }

    pub fn with(backend: Backend) -> Env {
        Env {
            backend,
            prefix: format!("abacustest:{}:", uuid::Uuid::new_v4()),
        }
    }

    /// What this test's keys start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A store handle for one node, under this test's prefix.
    pub async fn store(&self) -> TestStore {
        let inner: SharedStore = match &self.backend {
            Backend::Memory(s) => s.clone(),
            Backend::Redis(url) => {
                let s = RedisStore::connect(url).await.expect("valid redis url");
                s.ping().await.expect("test redis answers");
                Arc::new(s)
            }
        };
        TestStore::new(inner, &self.prefix)
    }

    /// Starts a node with `config` on its own store handle.
    pub async fn node(&self, config: Config) -> Node {
        Node::start(self.store().await, config).await
    }
}

/// Turns the rate limit on: `requests` per `window` per caller.
pub fn limit_rate(c: &mut Config, requests: u32, window: Duration) {
    let s = c.settings_mut::<floodgate_abacus::Settings>();
    s.rate_limit_enabled = true;
    s.rate_limit_requests = requests;
    s.rate_limit_window = window;
}

/// Defaults with auth on (keys [`KEY1`], [`KEY2`]), Idempotency-Key required and the rate
/// limit off; `edit` changes the rest.
pub fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::defaults();
    let s = c.settings_mut::<floodgate_abacus::Settings>();
    s.api_keys = vec![Secret::new(KEY1), Secret::new(KEY2)];
    s.auth_enabled = true;
    s.rate_limit_enabled = false;
    s.idempotency_required = true;
    // Long enough for any test, short enough not to litter a shared test Redis for a day.
    c.idempotency_ttl = Duration::from_secs(600);
    edit(&mut c);
    c
}

/// One abacus "node": the router with the core middleware, served on loopback.
pub struct Node {
    pub url: String,
    pub faults: Arc<Faults>,
    pub client: reqwest::Client,
}

/// A response, read completely.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn header_u64(&self, name: &str) -> u64 {
        self.header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {name} header in {self:?}"))
    }

    pub fn replayed(&self) -> bool {
        self.header("idempotent-replayed") == Some("true")
    }
}

/// What to send.
#[derive(Clone, Copy)]
pub struct Req<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub api_key: Option<&'a str>,
    pub idem: Option<&'a str>,
    pub body: Option<&'a str>,
}

impl<'a> Req<'a> {
    pub fn get() -> Self {
        Req {
            method: "GET",
            path: "/abacus/sum",
            api_key: Some(KEY1),
            idem: None,
            body: None,
        }
    }

    pub fn add(idem: Option<&'a str>, body: &'a str) -> Self {
        Req {
            method: "POST",
            path: "/abacus/number",
            api_key: Some(KEY1),
            idem,
            body: Some(body),
        }
    }

    pub fn reset(idem: Option<&'a str>, body: &'a str) -> Self {
        Req {
            method: "PUT",
            path: "/abacus/sum",
            api_key: Some(KEY1),
            idem,
            body: Some(body),
        }
    }

    pub fn key(mut self, api_key: Option<&'a str>) -> Self {
        self.api_key = api_key;
        self
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

pub async fn context(store: SharedStore, config: Config) -> AppContext {
    let db = floodgate_db::Db::connect(Some("sqlite::memory:"))
        .await
        .expect("in-memory sqlite");
    let backends = Backends {
        store,
        bus: Arc::new(floodgate_bus::MemoryBus::new()),
        db,
        migrated: Arc::new(AtomicBool::new(true)),
    };
    AppContext::new(config, backends)
}

impl Node {
    pub async fn start(store: TestStore, config: Config) -> Node {
        let faults = store.faults.clone();
        let body_limit = config.body_limit;
        let ctx = context(Arc::new(store), config).await;
        let app = floodgate_core::http::apply_middleware(
            floodgate_abacus::router(&ctx),
            body_limit,
            true,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let svc = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, svc).await {
                eprintln!("test server stopped: {e}");
            }
        });
        Node {
            url: format!("http://{addr}"),
            faults,
            client: client(),
        }
    }

    /// Sends `req`; transport errors (timeouts, resets) are returned, not panicked on.
    pub async fn try_send(&self, req: Req<'_>) -> reqwest::Result<Resp> {
        let method = Method::from_bytes(req.method.as_bytes()).expect("method");
        let mut b = self
            .client
            .request(method, format!("{}{}", self.url, req.path));
        if let Some(k) = req.api_key {
            b = b.header("x-api-key", k);
        }
        if let Some(k) = req.idem {
            b = b.header("idempotency-key", k);
        }
        if let Some(body) = req.body {
            b = b
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = b.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        Ok(Resp {
            status,
            headers,
            text,
        })
    }

    pub async fn send(&self, req: Req<'_>) -> Resp {
        self.try_send(req).await.expect("request completes")
    }

    pub async fn sum(&self) -> i64 {
        let r = self.send(Req::get()).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["current_sum"]
            .as_i64()
            .unwrap_or_else(|| panic!("no current_sum in {r:?}"))
    }
}

/// Waits until `counter` has reached `at_least` (clients counting what they have done).
pub async fn until_count(counter: &std::sync::atomic::AtomicU64, at_least: u64) {
    while counter.load(std::sync::atomic::Ordering::Relaxed) < at_least {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
