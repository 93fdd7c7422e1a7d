//! Gift codes through a real broker that goes away and comes back, with no restart of the
//! node: 503 with Retry-After while it is down, 200 again after.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_gives_503_then_recovers() {
    let dir = TempDir::new();
    let Some(broker) = tansu(&dir) else { return };
    let mut cfg = embedded_config(&dir);
    cfg.kafka_brokers = Some(format!("127.0.0.1:{}", broker.port));
    let node = start(cfg).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let queue = url(&node, "/queue");
    let ok = until_ok(Duration::from_secs(60), || http.post(&queue)).await;
    assert!(ok, "never got a gift code through Tansu");

    broker.pause();
    let t0 = Instant::now();
    let r = http.post(&queue).send().await.unwrap();
    let took = t0.elapsed();
    assert_eq!(
        r.status(),
        503,
        "broker down must be 503, got {}",
        r.status()
    );
    assert!(r.headers().contains_key("retry-after"));
    assert!(took < Duration::from_secs(10), "503 took {took:?}");
    // Once the outage is known, further requests fail at once instead of waiting.
    let t1 = Instant::now();
    let r = http.post(&queue).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        t1.elapsed() < Duration::from_millis(500),
        "second 503 took {:?}",
        t1.elapsed()
    );

    broker.resume();
    let back = until_ok(Duration::from_secs(90), || http.post(&queue)).await;
    assert!(back, "no gift code after the broker came back");
    node.shutdown.cancel();
}

/// A node killed with -9 while holding admission slots: the cluster gets them back once the
/// leases expire, without anyone releasing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_of_a_node_killed_with_sigkill_come_back_by_lease_expiry() {
    let Some(redis) = redis() else { return };
    let dir = TempDir::new();
    let redis_url = format!("redis://127.0.0.1:{}/0", redis.port);
    let capacity = 4;
    // Node A: the real binary, sharing Redis; no workers, so its /queue requests hang on.
    let port_a = free_port();
    let mut a = idle_node(
        &dir,
        port_a,
        &redis_url,
        capacity,
        &["KAFKA_GIFT_CODE_TIMEOUT=2"],
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let a_url = format!("http://127.0.0.1:{port_a}");
    assert!(healthy(&http, &a_url, Duration::from_secs(20)).await);
    // Node B: same Redis and topics, with a worker.
    let mut cfg = embedded_config(&dir);
    cfg.redis_url = Some(redis_url);
    let g = cfg.settings_mut::<floodgate_giftcodes::Settings>();
    g.rate_limit_capacity = capacity;
    g.timeout = Duration::from_secs(2);
    let b = start(cfg).await;
    // Give A's reply listener a moment to claim its slot (until then A answers 503 at once).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Fill every slot on A.
    let filled_at = Instant::now();
    for _ in 0..capacity {
        let (h, u) = (http.clone(), format!("{a_url}/queue"));
        tokio::spawn(async move { h.post(u).send().await });
    }
    // B sends nothing while A fills up, so A's requests hold every slot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = http.post(url(&b, "/queue")).send().await.unwrap();
    assert_eq!(r.status(), 429, "node B did not see the slots A holds");
    a.kill().unwrap();
    let _ = a.wait();
    let killed_at = Instant::now();
    // A died while its requests were still waiting (their 2 s timeout had not passed), so
    // nothing released the slots: B is still refused right after the kill.
    assert!(
        filled_at.elapsed() < Duration::from_millis(1800),
        "too slow to kill A in time"
    );
    let r = http.post(url(&b, "/queue")).send().await.unwrap();
    assert_eq!(r.status(), 429, "slots freed without lease expiry?");
    // Leases last timeout × 1.5 at least timeout + 1 s: 3 s here.
    let back = until_ok(Duration::from_secs(10), || http.post(url(&b, "/queue"))).await;
    assert!(back, "capacity never came back after kill -9");
    assert!(killed_at.elapsed() < Duration::from_secs(10));
    let r = http.post(url(&b, "/queue")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    b.shutdown.cancel();
}

/// A node stopped gracefully gives its reply slot back: a node started right after takes
/// slot 0 (and its consumer groups) instead of another slot, so the replies on its topic and
/// its share of `results` do not wait for the old lease to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_gives_the_reply_slot_back() {
    let Some(redis) = redis() else { return };
    let dir = TempDir::new();
    let config = || {
        let mut c = embedded_config(&dir);
        c.redis_url = Some(format!("redis://127.0.0.1:{}/0", redis.port));
        c
    };
    let a = start(config()).await;
    let store = a.ctx.backends.store.clone();
    let key = format!(
        "giftcodes:reply-slot:{}:0",
        a.ctx
            .config
            .settings::<floodgate_giftcodes::Settings>()
            .results_topic
    );
    let holder = |id: String| {
        let (store, key) = (store.clone(), key.clone());
        async move { store.get(&key).await.ok().flatten().as_deref() == Some(id.as_bytes()) }
    };
    let a_id = a.ctx.config.node_id.clone();
    assert!(eventually(Duration::from_secs(10), || holder(a_id.clone())).await);

    a.shutdown.cancel();
    a.done.await.expect("clean shutdown");
    assert_eq!(
        store.get(&key).await.expect("store"),
        None,
        "slot 0 still held"
    );

    let b = start(config()).await;
    let b_id = b.ctx.config.node_id.clone();
    assert!(
        eventually(Duration::from_secs(10), || holder(b_id.clone())).await,
        "a node started right after did not get slot 0"
    );
    stop_any(b).await;
}

/// A node stopped with SIGTERM while its requests still hold admission slots, its drain cut
/// short: it gives the slots back on the way out instead of leaving them to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_admission_slots_back() {
    let Some(redis) = redis() else { return };
    let dir = TempDir::new();
    let redis_url = format!("redis://127.0.0.1:{}/0", redis.port);
    let capacity = 4;
    let port = free_port();
    // Its /queue requests wait for 20 s, holding their slots (leases of 30 s).
    let settings = [
        "KAFKA_GIFT_CODE_TIMEOUT=20",
        "TASKS_TOPIC=lease-test",
        "FLOODGATE_SHUTDOWN_TIMEOUT_MS=500",
    ];
    let mut node = idle_node(&dir, port, &redis_url, capacity, &settings);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    assert!(healthy(&http, &base, Duration::from_secs(20)).await);
    let store = floodgate_store::connect(Some(&redis_url))
        .await
        .expect("store");
    let pool = "giftcodes:inflight:lease-test";
    // The reply listener must hold its slot first (until then /queue answers 503 at once).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for _ in 0..capacity {
        let (h, u) = (http.clone(), format!("{base}/queue"));
        tokio::spawn(async move { h.post(u).send().await });
    }
    let full = eventually(Duration::from_secs(5), || async {
        store.lease_count(pool).await.ok() == Some(capacity)
    })
    .await;
    assert!(full, "the requests never held every slot");

    let term = std::process::Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let stopped = Instant::now();
    let exited = loop {
        if let Some(status) = node.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exited.success(), "exit status {exited:?}");
    assert_eq!(
        store.lease_count(pool).await.expect("store"),
        0,
        "slots still held after the node exited ({:?} after SIGTERM; leases last 30 s)",
        stopped.elapsed()
    );
}

/// The real binary on `port`, sharing Redis, with no workers and its own in-process bus: its
/// `/queue` requests hold their admission slots until they time out. `settings` are
/// `NAME=value` pairs.
fn idle_node(
    dir: &TempDir,
    port: u16,
    redis_url: &str,
    capacity: u32,
    settings: &[&str],
) -> std::process::Child {
    let mut cmd = common::binary();
    cmd.current_dir(dir.path())
        .args([
            "serve",
            "--no-workers",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--redis-url", redis_url])
        .args(["--set", &format!("RATE_LIMIT_CAPACITY={capacity}")]);
    for s in settings {
        cmd.args(["--set", s]);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn floodgate")
}
