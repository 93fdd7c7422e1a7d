//! Gift codes end to end on the embedded backends and on Redis + Kafka (Tansu): the seed's
//! three user scenarios, the cluster-wide in-flight cap, two nodes sharing it, and leases of
//! a crashed node expiring.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use floodgate_bus::{Bus, BusError, BusResult, Consumer, Outgoing, SharedBus};
use floodgate_core::{AppContext, Backends, Config};
use floodgate_giftcodes::model::{Reply, Request};
use floodgate_giftcodes::{new_gift_code, workers, GiftCodes, Settings};
use floodgate_store::{Lease, SharedStore};
use tokio_util::sync::CancellationToken;

use floodgate_testkit::skip;

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// The store a test's nodes share: `None` = memory (with the in-process bus), else the
/// variable naming a Redis (or Redis Cluster) URL, used with Kafka from the environment.
const REDIS: Option<&str> = Some("FLOODGATE_TEST_REDIS_URL");
const REDIS_CLUSTER: Option<&str> = Some("FLOODGATE_TEST_REDIS_CLUSTER_URL");
const MEMORY: Option<&str> = None;

/// The backends one test's nodes share.
#[derive(Clone)]
struct Shared {
    store: SharedStore,
    bus: SharedBus,
    config: Config,
}

async fn shared(redis_var: Option<&str>, capacity: u32) -> Option<Shared> {
    let mut config = Config::defaults();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let g = config.settings_mut::<Settings>();
    g.tasks_topic = format!("tasks-{tag}");
    g.results_topic = format!("results-{tag}");
    g.rate_limit_capacity = capacity;
    g.timeout = Duration::from_secs(10);
    let (store, bus) = if let Some(redis_var) = redis_var {
        let (Some(r), Some(k)) = (env(redis_var), env("FLOODGATE_TEST_KAFKA_BROKERS")) else {
            skip(&format!("{redis_var} / FLOODGATE_TEST_KAFKA_BROKERS"));
            return None;
        };
        let store = floodgate_store::connect(Some(&r)).await.unwrap();
        let claims = std::sync::Arc::new(floodgate_bus::claims::StoreClaims(store.clone()));
        let bus = floodgate_bus::connect(
            Some(&k),
            floodgate_bus::KafkaTuning::default(),
            Some(claims),
        )
        .await
        .unwrap();
        (store, bus)
    } else {
        (
            floodgate_store::connect(None).await.unwrap(),
            floodgate_bus::connect(None, Default::default(), None)
                .await
                .unwrap(),
        )
    };
    Some(Shared { store, bus, config })
}

struct Node {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn node(s: &Shared, with_worker: bool) -> Node {
    let db = floodgate_db::Db::connect(Some("sqlite::memory:"))
        .await
        .unwrap();
    let backends = Backends {
        store: s.store.clone(),
        bus: s.bus.clone(),
        db,
        migrated: Default::default(),
    };
    let mut config = s.config.clone();
    config.node_id = format!("node-{}", uuid::Uuid::new_v4().simple());
    let ctx = AppContext::new(config, backends);
    let stop = CancellationToken::new();
    let router = GiftCodes::start(&ctx, stop.clone()).router();
    if with_worker {
        tokio::spawn(workers(ctx.clone(), stop.clone()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
            .ok();
    });
    Node { addr, stop }
}

/// Waits until `POST /queue` answers 200 once (reply listeners and consumer groups ready).
async fn warm(http: &reqwest::Client, node: &Node) {
    for _ in 0..120 {
        if let Ok(r) = http
            .post(format!("http://{}/queue", node.addr))
            .send()
            .await
        {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("node never answered /queue");
}

/// Sends `users` POST /queue at `concurrency`, round-robin over `nodes`; returns
/// (status counts, gift codes of the 200s).
async fn users(nodes: &[&Node], users: usize, concurrency: usize) -> (Vec<u16>, Vec<String>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for i in 0..users {
        let (http, sem, addr) = (http.clone(), sem.clone(), addrs[i % addrs.len()]);
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            match http.post(format!("http://{addr}/queue")).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    (status, body["gift_code"].as_str().map(str::to_string))
                }
                Err(_) => (0, None),
            }
        }));
    }
    let mut statuses = Vec::new();
    let mut codes = Vec::new();
    for t in tasks {
        let (s, c) = t.await.unwrap();
        statuses.push(s);
        codes.extend(c);
    }
    (statuses, codes)
}

fn assert_unique(codes: &[String]) {
    let set: HashSet<&String> = codes.iter().collect();
    assert_eq!(set.len(), codes.len(), "duplicate gift codes");
    for c in codes {
        assert!(c.starts_with("GIFT-") && c.len() == 37, "{c}");
    }
}

async fn seed_scenarios(redis_var: Option<&str>) {
    let Some(s) = shared(redis_var, 100).await else {
        return;
    };
    let n = node(&s, true).await;
    warm(&reqwest::Client::new(), &n).await;
    for (count, conc, min_ok) in [(10, 10, 10), (200, 50, 198), (1000, 100, 990)] {
        let (statuses, codes) = users(&[&n], count, conc).await;
        let ok = statuses.iter().filter(|&&s| s == 200).count();
        assert!(
            ok >= min_ok,
            "{count} users: only {ok} succeeded: {:?}",
            histogram(&statuses)
        );
        assert_eq!(codes.len(), ok);
        assert_unique(&codes);
    }
}

fn histogram(statuses: &[u16]) -> Vec<(u16, usize)> {
    let mut h = std::collections::BTreeMap::new();
    for s in statuses {
        *h.entry(*s).or_insert(0) += 1;
    }
    h.into_iter().collect()
}

/// A stand-in for the seed's worker that holds every request `delay` before answering, and
/// records the most requests it ever held at once.
fn slow_worker(s: &Shared, delay: Duration) -> (Arc<AtomicUsize>, CancellationToken) {
    let max_seen = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let (bus, topic, max, token) = (
        s.bus.clone(),
        s.config.settings::<Settings>().tasks_topic.clone(),
        max_seen.clone(),
        stop.clone(),
    );
    let holding = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        // A group per test: tests run in parallel, and a member of a shared group that a
        // finished test never took out of it would hold partitions of the others.
        let group = format!("slow-worker-{topic}");
        let mut c = bus.subscribe(&topic, &group).await.unwrap();
        let mut seen = HashSet::new();
        loop {
            let m = tokio::select! { _ = token.cancelled() => break, m = c.recv() => m };
            let Ok(m) = m else { continue };
            let _ = c.commit(&m).await;
            let req: Request = serde_json::from_slice(&m.payload).unwrap();
            // Delivery is at least once: a task delivered again is not another admitted
            // request, so it is answered but not counted (and reported, to see how often).
            if !seen.insert(req.correlation_id.clone()) {
                eprintln!(
                    "slow worker: task {} delivered again (partition {}, offset {})",
                    req.correlation_id, m.partition, m.offset
                );
                continue;
            }
            let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            let (bus, holding) = (bus.clone(), holding.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                holding.fetch_sub(1, Ordering::SeqCst);
                let reply = Reply {
                    correlation_id: req.correlation_id,
                    result: Some(new_gift_code()),
                };
                let payload = serde_json::to_vec(&reply).unwrap();
                let topic = req.reply_to.unwrap();
                bus.publish(Outgoing {
                    topic: &topic,
                    key: None,
                    payload: &payload,
                    headers: &[],
                })
                .await
                .unwrap();
            });
        }
    });
    (max_seen, stop)
}

async fn capacity_is_exact(redis_var: Option<&str>) {
    let capacity = 10;
    let Some(s) = shared(redis_var, capacity).await else {
        return;
    };
    let n = node(&s, false).await;
    let (_max, worker) = slow_worker(&s, Duration::from_millis(300));
    warm(&reqwest::Client::new(), &n).await;
    let (_max, _) = (_max, ());
    drop(worker);
    let (max_seen, worker) = slow_worker(&s, Duration::from_millis(1500));
    let (statuses, codes) = users(&[&n], 5 * capacity as usize, 5 * capacity as usize).await;
    worker.cancel();
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let busy = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(ok, capacity as usize, "{:?}", histogram(&statuses));
    assert_eq!(busy, 4 * capacity as usize, "{:?}", histogram(&statuses));
    assert_unique(&codes);
    assert!(max_seen.load(Ordering::SeqCst) <= capacity as usize);
}

macro_rules! both {
    ($($name:ident),*) => {
        mod memory { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(super::MEMORY).await })* }
        mod real { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(super::REDIS).await })* }
        mod real_cluster { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(super::REDIS_CLUSTER).await })* }
    };
}

both!(seed_scenarios, capacity_is_exact);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_never_exceed_the_shared_capacity() {
    two_nodes_share_one_capacity(REDIS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_never_exceed_the_shared_capacity_on_redis_cluster() {
    two_nodes_share_one_capacity(REDIS_CLUSTER).await
}

async fn two_nodes_share_one_capacity(redis_var: Option<&str>) {
    let capacity = 8;
    let Some(s) = shared(redis_var, capacity).await else {
        return;
    };
    let (a, b) = (node(&s, false).await, node(&s, false).await);
    let (max_seen, worker) = slow_worker(&s, Duration::from_millis(400));
    let http = reqwest::Client::new();
    warm(&http, &a).await;
    warm(&http, &b).await;
    let (statuses, codes) = users(&[&a, &b], 200, 40).await;
    worker.cancel();
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert!(ok >= capacity as usize, "{:?}", histogram(&statuses));
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{:?}",
        histogram(&statuses)
    );
    let max = max_seen.load(Ordering::SeqCst);
    assert!(
        max <= capacity as usize,
        "worker saw {max} in flight, capacity {capacity}"
    );
    assert!(max >= 2, "load never overlapped");
    assert_unique(&codes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_nodes_slots_come_back_by_lease_expiry() {
    let capacity = 5;
    let Some(mut s) = shared(REDIS, capacity).await else {
        return;
    };
    s.config.settings_mut::<Settings>().timeout = Duration::from_secs(1);
    let n = node(&s, true).await;
    let http = reqwest::Client::new();
    warm(&http, &n).await;
    // A node that took every slot and was then killed -9: its leases are never released.
    let pool = format!(
        "giftcodes:inflight:{}",
        s.config.settings::<Settings>().tasks_topic
    );
    let lease = Duration::from_secs(2); // timeout 1 s + max(1 s, timeout/2), as the service sets
    for i in 0..capacity {
        assert!(s
            .store
            .lease_acquire(Lease {
                pool: &pool,
                holder: &format!("dead-{i}"),
                capacity,
                ttl: lease,
            })
            .await
            .unwrap());
    }
    let r = http
        .post(format!("http://{}/queue", n.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "Server busy, too many in-flight requests. Please try again later."
    );
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    let (statuses, _) = users(&[&n], capacity as usize, capacity as usize).await;
    assert!(
        statuses.iter().all(|&s| s == 200),
        "capacity did not return: {:?}",
        histogram(&statuses)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_worker_means_504_after_the_timeout() {
    let Some(mut s) = shared(MEMORY, 10).await else {
        return;
    };
    s.config.settings_mut::<Settings>().timeout = Duration::from_millis(500);
    let n = node(&s, false).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/queue", n.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    // A late reply after the timeout is dropped quietly; the node keeps serving.
    let (max, w) = slow_worker(&s, Duration::from_millis(10));
    let (statuses, _) = users(&[&n], 3, 3).await;
    w.cancel();
    assert!(max.load(Ordering::SeqCst) >= 1);
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_replies_are_skipped_and_the_loop_keeps_going() {
    let Some(s) = shared(MEMORY, 10).await else {
        return;
    };
    let n = node(&s, true).await;
    let http = reqwest::Client::new();
    warm(&http, &n).await;
    for junk in [
        &b"not json"[..],
        br#"{"correlation_id":"nobody","result":"GIFT-X"}"#,
        br#"{"result":1}"#,
    ] {
        s.bus
            .publish(Outgoing {
                topic: &s.config.settings::<Settings>().results_topic,
                key: None,
                payload: junk,
                headers: &[],
            })
            .await
            .unwrap();
    }
    let (statuses, codes) = users(&[&n], 20, 5).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_unique(&codes);
}

/// A bus that refuses its next publish to `topic` at once, as Tansu now and then does under
/// load ("Unknown broker error").
struct RefusesOnce {
    inner: SharedBus,
    topic: String,
    armed: AtomicBool,
}

#[async_trait::async_trait]
impl Bus for RefusesOnce {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn in_process(&self) -> bool {
        self.inner.in_process()
    }
    async fn ping(&self) -> BusResult<()> {
        self.inner.ping().await
    }
    async fn publish(&self, msg: Outgoing<'_>) -> BusResult<()> {
        if msg.topic == self.topic && self.armed.swap(false, Ordering::SeqCst) {
            return Err(BusError::Unavailable("Unknown broker error".into()));
        }
        self.inner.publish(msg).await
    }
    async fn subscribe(&self, topic: &str, group: &str) -> BusResult<Box<dyn Consumer>> {
        self.inner.subscribe(topic, group).await
    }
    async fn subscribe_from_end(&self, topic: &str, group: &str) -> BusResult<Box<dyn Consumer>> {
        self.inner.subscribe_from_end(topic, group).await
    }
    async fn flush(&self) -> BusResult<()> {
        self.inner.flush().await
    }
    fn close(&self) {
        self.inner.close()
    }
}

/// One publish refused at once (the broker is there) is tried again, and the requests
/// around it are not turned away as if the bus were down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_refused_publish_turns_nobody_away() {
    let Some(mut s) = shared(MEMORY, 50).await else {
        return;
    };
    let bus = Arc::new(RefusesOnce {
        inner: s.bus.clone(),
        topic: s.config.settings::<Settings>().tasks_topic.clone(),
        armed: AtomicBool::new(false),
    });
    s.bus = bus.clone();
    let n = node(&s, true).await;
    warm(&reqwest::Client::new(), &n).await;
    bus.armed.store(true, Ordering::SeqCst);
    let (statuses, codes) = users(&[&n], 20, 20).await;
    assert!(!bus.armed.load(Ordering::SeqCst), "no publish was refused");
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_unique(&codes);
}

#[test]
fn gift_codes_carry_128_random_bits() {
    let codes: HashSet<String> = (0..10_000).map(|_| new_gift_code()).collect();
    assert_eq!(codes.len(), 10_000);
    let c = codes.iter().next().unwrap();
    assert!(
        c.starts_with("GIFT-")
            && c[5..].chars().all(|ch| ch.is_ascii_hexdigit())
            && c.len() == 5 + 32
    );
}

#[allow(dead_code)]
fn _bus_is_object_safe(b: &dyn Bus) -> &dyn Bus {
    b
}
