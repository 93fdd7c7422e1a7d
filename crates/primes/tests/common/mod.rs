//! Test plumbing: backends per set (embedded, or Redis + Kafka from the environment), an app
//! built from `Config::defaults()`, HTTP calls through the router, polling, a reference.
#![allow(dead_code)]

pub mod trial;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use floodgate_bus::{KafkaBus, MemoryBus, SharedBus};
use floodgate_core::{AppContext, Backends, Config};
use floodgate_primes::Options;
use floodgate_store::{Kv, MemoryStore, RedisStore, SharedStore};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tower::ServiceExt;
use uuid::Uuid;

pub use floodgate_testkit::TestStore;

pub const REDIS_VAR: &str = "FLOODGATE_TEST_REDIS_URL";
pub const KAFKA_VAR: &str = "FLOODGATE_TEST_KAFKA_BROKERS";

/// The value of `var`, or None after printing the skip notice (a panic when CI demands
/// the services with FLOODGATE_REQUIRE_SERVICES=1).
pub fn service_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let msg = format!("skipped: {var} not set");
            if std::env::var("FLOODGATE_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{msg}");
            }
            eprintln!("{msg}");
            None
        }
    }
}

/// One backend set. `memory_bus` is kept for the embedded checks of consumer lag.
#[derive(Clone)]
pub struct Setup {
    pub store: Arc<TestStore>,
    pub bus: SharedBus,
    pub memory_bus: Option<MemoryBus>,
    /// How long a job may take to come back (group joins on Kafka take seconds).
    pub patience: Duration,
}

impl Setup {
    pub fn embedded() -> Setup {
        let bus = MemoryBus::new();
        Setup {
            store: TestStore::wrap(Arc::new(MemoryStore::new())),
            bus: Arc::new(bus.clone()),
            memory_bus: Some(bus),
            patience: Duration::from_secs(60),
        }
    }

    /// Redis and Kafka from the environment, or None (skipped).
    pub async fn distributed() -> Option<Setup> {
        let redis = service_env(REDIS_VAR)?;
        let brokers = service_env(KAFKA_VAR)?;
        let store = RedisStore::connect(&redis).await.expect("valid redis url");
        store.ping().await.expect("test redis answers");
        let bus = KafkaBus::connect(&brokers).expect("valid broker list");
        Some(Setup {
            store: TestStore::wrap(Arc::new(store)),
            bus: Arc::new(bus),
            memory_bus: None,
            patience: Duration::from_secs(90),
        })
    }

    pub fn shared_store(&self) -> SharedStore {
        self.store.clone()
    }
}

/// A router plus what is needed to run workers for it. Each app gets its own topic and
/// consumer group, so tests sharing a broker never see each other's jobs.
pub struct App {
    pub ctx: AppContext,
    pub opts: Options,
    pub router: Router,
    pub setup: Setup,
    db_file: PathBuf,
}

impl App {
    pub async fn new(setup: &Setup, tweak: impl FnOnce(&mut Config, &mut Options)) -> App {
        let mut config = Config::defaults();
        config.settings_mut::<floodgate_primes::Settings>().topic =
            format!("primes-test-{}", Uuid::new_v4().simple());
        let mut opts = Options {
            group: format!("primes-test-{}", Uuid::new_v4().simple()),
            drain_timeout: Duration::from_secs(30),
            ..Options::default()
        };
        tweak(&mut config, &mut opts);
        let dir = std::env::temp_dir().join("floodgate-primes-tests");
        let db_file = dir.join(format!("{}.db", Uuid::new_v4().simple()));
        let db = floodgate_db::Db::connect(Some(&format!("sqlite://{}", db_file.display())))
            .await
            .expect("temp sqlite");
        let backends = Backends {
            store: setup.shared_store(),
            bus: setup.bus.clone(),
            db,
            migrated: Arc::new(AtomicBool::new(true)),
        };
        let ctx = AppContext::new(config, backends);
        let router = floodgate_primes::router_with(&ctx, opts.clone());
        App {
            ctx,
            opts,
            router,
            setup: setup.clone(),
            db_file,
        }
    }

    pub fn topic(&self) -> &str {
        &self
            .ctx
            .config
            .settings::<floodgate_primes::Settings>()
            .topic
    }

    pub fn start_workers(&self) -> Workers {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(floodgate_primes::workers_with(
            self.ctx.clone(),
            self.opts.clone(),
            stop.clone(),
        ));
        Workers {
            _guard: stop.clone().drop_guard(),
            stop,
            handle,
        }
    }

    pub async fn call(&self, method: Method, uri: &str, body: &str) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Body::from(body.to_string())).expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            raw: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn post(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::POST, uri, body).await
    }

    pub async fn status(&self, id: &str) -> Reply {
        self.call(Method::GET, &format!("/status/{id}"), "").await
    }

    /// Submits `n` by query and returns the request id; panics unless 200.
    pub async fn submit(&self, n: u64) -> String {
        let r = self.post(&format!("/generate?n={n}"), "").await;
        assert_eq!(r.status, StatusCode::OK, "submit n={n}: {}", r.raw);
        r.json["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no request_id in {}", r.raw))
            .to_string()
    }

    /// Polls until the job has `want` status; returns the final body.
    pub async fn wait_for(&self, id: &str, want: &str) -> Value {
        let deadline = tokio::time::Instant::now() + self.setup.patience;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            let r = self.status(id).await;
            if r.status == StatusCode::OK && r.json["status"] == want {
                return r.json;
            }
            last = format!("{} {}", r.status, r.raw);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("job {id} never became {want}; last answer: {last}");
    }

    /// Submits tiny jobs until one completes: the workers have joined the group. (With a
    /// short TTL a job submitted before that may expire unseen.)
    pub async fn warm_up(&self) {
        let deadline = tokio::time::Instant::now() + self.setup.patience;
        while tokio::time::Instant::now() < deadline {
            let id = self.submit(1).await;
            loop {
                let r = self.status(&id).await;
                if r.json["status"] == "complete" {
                    return;
                }
                if r.status != StatusCode::OK {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        panic!("workers never completed a job");
    }

    /// The result of a complete job.
    pub async fn wait_complete(&self, id: &str) -> Vec<u64> {
        let body = self.wait_for(id, "complete").await;
        serde_json::from_value(body["result"].clone()).expect("result is a list of integers")
    }

    /// Jobs published and not committed by the group (embedded bus only).
    pub fn lag(&self) -> Option<u64> {
        self.setup
            .memory_bus
            .as_ref()
            .map(|b| b.lag(self.topic(), &self.opts.group))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.db_file.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Running workers; stopped when dropped.
pub struct Workers {
    pub stop: CancellationToken,
    pub handle: JoinHandle<()>,
    _guard: DropGuard,
}

impl Workers {
    /// Stops them and waits for `workers` to return (a hang fails the test).
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.handle)
            .await
            .expect("workers returns after stop")
            .expect("workers did not panic");
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub raw: String,
}
