//! A broker that comes back having lost everything (Tansu with memory storage, restarted)
//! under a live producer and consumer: the process survives, and the same bus and consumer
//! deliver again within 10 s of the broker's return, with nothing recreated by the caller.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::tansu::{tansu_bin, Tansu};
use common::unique;
use floodgate_bus::{Bus, BusError, KafkaBus, KafkaConfig, Outgoing};
use tokio::sync::mpsc;

/// The bound the issue sets for every service after the broker is back.
const RECOVERY: Duration = Duration::from_secs(10);
const ROUNDS: usize = 2;
/// How long after the broker's return a consumer may still skip records (see
/// `rewind_lost_logs` in the bus).
const SETTLE: Duration = Duration::from_secs(2);

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Payload → when the broker acknowledged it.
type Acked = Arc<Mutex<HashMap<String, Instant>>>;

/// Publishes `n-0`, `n-1`, ... every 20 ms until stopped, noting what the broker acked.
fn spawn_load(bus: Arc<KafkaBus>, topic: String, acked: Acked) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0.. {
            let payload = format!("n-{i}");
            let msg = Outgoing {
                topic: &topic,
                key: Some(payload.as_bytes()),
                payload: payload.as_bytes(),
                headers: &[],
            };
            if bus.publish(msg).await.is_ok() {
                acked.lock().unwrap().insert(payload, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Waits until a message acked at or after `since` arrives; the time that took.
async fn first_after(
    rx: &mut mpsc::UnboundedReceiver<String>,
    acked: &Acked,
    since: Instant,
    wait: Duration,
) -> Option<Duration> {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(p)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let at = acked.lock().unwrap().get(&p).copied();
        if at.is_some_and(|t| t >= since) {
            return Some(since.elapsed());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_heals_after_the_broker_loses_its_state_twice_under_load() {
    let Some(bin) = tansu_bin() else {
        eprintln!("skipped: tansu binary not found (set FLOODGATE_TANSU_BIN)");
        return;
    };
    let mut broker = Tansu::start(bin, free_port());
    let mut cfg = KafkaConfig::new(&format!("127.0.0.1:{}", broker.port));
    cfg.message_timeout = Duration::from_secs(2);
    let bus = Arc::new(KafkaBus::connect_with(cfg).expect("config"));
    let topic = unique("heal");
    let acked: Acked = Arc::default();
    let load = spawn_load(bus.clone(), topic.clone(), acked.clone());

    let mut consumer = bus
        .subscribe(&topic, &unique("g"))
        .await
        .expect("subscribe");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consuming = tokio::spawn(async move {
        loop {
            match consumer.recv().await {
                Ok(m) => {
                    let _ = consumer.commit(&m).await;
                    let text = String::from_utf8_lossy(&m.payload).into_owned();
                    if tx.send(text).is_err() {
                        break;
                    }
                }
                Err(BusError::Closed) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let _ = consumer.close().await;
    });
    let start = Instant::now();
    let first = first_after(&mut rx, &acked, start, Duration::from_secs(60)).await;
    assert!(first.is_some(), "nothing flowed before the restarts");

    let mut back = Instant::now();
    for round in 1..=ROUNDS {
        broker.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        broker.spawn();
        back = Instant::now();
        let took = first_after(&mut rx, &acked, back, RECOVERY).await;
        eprintln!("round {round}: delivering again {took:?} after the broker came back");
        assert!(
            took.is_some(),
            "round {round}: no delivery within {RECOVERY:?}"
        );
    }

    // Acks from before the loss died with the broker's memory (its durability is ours). A
    // consumer notices the lost log within about a second; everything acked once that has
    // settled must be delivered.
    let settled = back + SETTLE;
    tokio::time::sleep_until((settled + Duration::from_secs(2)).into()).await;
    load.abort();
    let since_back: HashMap<String, Instant> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| **at >= back)
        .map(|(p, at)| (p.clone(), *at))
        .collect();
    let mut missing = since_back.clone();
    let deadline = tokio::time::Instant::now() + RECOVERY;
    while missing.values().any(|at| *at >= settled) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(p)) => {
                missing.remove(&p);
            }
            _ => break,
        }
    }
    let (late, early): (Vec<_>, Vec<_>) = missing.into_iter().partition(|(_, at)| *at >= settled);
    eprintln!(
        "acked after the last return: {}; not delivered: {} within the first {SETTLE:?}, {} later",
        since_back.len(),
        early.len(),
        late.len()
    );
    assert!(
        late.is_empty(),
        "acked after {SETTLE:?}, never delivered: {late:?}"
    );
    bus.close();
    drop(rx);
    let _ = tokio::time::timeout(Duration::from_secs(15), consuming).await;
}
