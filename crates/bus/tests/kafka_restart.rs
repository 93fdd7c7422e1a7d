//! A broker that comes back having lost everything (Tansu with memory storage, restarted)
//! under a live producer and consumer: the process survives, and the same bus and consumer
//! deliver again within 10 s of the broker's return, with nothing recreated by the caller.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::tansu::tansu;
use common::unique;
use floodgate_bus::{Bus, BusError, KafkaBus, KafkaConfig, Outgoing};
use floodgate_testkit::Process;
use tokio::sync::mpsc;

/// The bound the issue sets for every service after the broker is back.
const RECOVERY: Duration = Duration::from_secs(10);
const ROUNDS: usize = 2;
const PRELOAD: usize = 400;

/// Payload → when the broker acknowledged it.
type Acked = Arc<Mutex<HashMap<String, Instant>>>;

/// Publishes `payload` with itself as the key; true once the broker acked it.
async fn publish_keyed_by_itself(bus: &KafkaBus, topic: &str, payload: &str) -> bool {
    let msg = Outgoing {
        topic,
        key: Some(payload.as_bytes()),
        payload: payload.as_bytes(),
        headers: &[],
    };
    bus.publish(msg).await.is_ok()
}

/// Publishes `n-0`, `n-1`, ... every 20 ms until stopped, noting what the broker acked.
fn spawn_load(bus: Arc<KafkaBus>, topic: String, acked: Acked) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0.. {
            let payload = format!("n-{i}");
            if publish_keyed_by_itself(&bus, &topic, &payload).await {
                acked.lock().unwrap().insert(payload, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Publishes `n` records at once (not tracked: they are lost with the broker), so the
/// consumer's positions are well past what the broker receives in its first moments back,
/// as in a long-running system. Returns once the consumer has had time to read them.
async fn preload(bus: &Arc<KafkaBus>, topic: &str, n: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (bus, topic) = (bus.clone(), topic.to_string());
        tasks.spawn(async move {
            publish_keyed_by_itself(&bus, &topic, &format!("pre-{i}")).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Receives and commits on `topic` in a new group, sending each payload to the receiver.
async fn spawn_consumer(
    bus: &KafkaBus,
    topic: &str,
) -> (tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<String>) {
    let mut consumer = bus.subscribe(topic, &unique("g")).await.expect("subscribe");
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
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
    (task, rx)
}

fn bus_on(broker: &Process) -> Arc<KafkaBus> {
    let mut cfg = KafkaConfig::new(&format!("127.0.0.1:{}", broker.port));
    cfg.message_timeout = Duration::from_secs(2);
    // As in a cluster with Redis: partitions claimed through the store, no broker groups.
    Arc::new(
        KafkaBus::connect_with(cfg)
            .expect("config")
            .with_claims(common::claims()),
    )
}

/// Waits until a message acked at or after `since` arrives; the time that took. Everything
/// received meanwhile goes into `seen`.
/// A bus on a broker, a load publishing to a fresh topic on it, and a consumer of the topic.
struct Flow {
    bus: Arc<KafkaBus>,
    topic: String,
    acked: Acked,
    load: tokio::task::JoinHandle<()>,
    consuming: tokio::task::JoinHandle<()>,
    rx: mpsc::UnboundedReceiver<String>,
}

impl Flow {
    async fn start(broker: &Process, name: &str) -> Flow {
        let bus = bus_on(broker);
        let topic = unique(name);
        let acked: Acked = Arc::default();
        let load = spawn_load(bus.clone(), topic.clone(), acked.clone());
        let (consuming, rx) = spawn_consumer(&bus, &topic).await;
        Flow {
            bus,
            topic,
            acked,
            load,
            consuming,
            rx,
        }
    }

    /// Closes the bus and waits (15 s at most) for the consumer to end.
    async fn finish(self) {
        self.bus.close();
        drop(self.rx);
        let _ = tokio::time::timeout(Duration::from_secs(15), self.consuming).await;
    }
}

async fn first_after(
    rx: &mut mpsc::UnboundedReceiver<String>,
    seen: &mut HashSet<String>,
    acked: &Acked,
    since: Instant,
    wait: Duration,
) -> Option<Duration> {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(p)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let at = acked.lock().unwrap().get(&p).copied();
        seen.insert(p);
        if at.is_some_and(|t| t >= since) {
            return Some(since.elapsed());
        }
    }
    None
}

// With broker-side groups this stalled for good one run in three under load (the consumer
// stayed assigned but fetched nothing, or librdkafka waited in `wait-unassign-to-complete`
// after a commit failed with UNKNOWN_TOPIC_OR_PARTITION). With claimed partitions, 8 of 8
// runs under load (load average 7 on 2 cores) delivered again 0.7-1.8 s after the return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_heals_after_the_broker_loses_its_state_twice_under_load() {
    let Some(mut broker) = tansu() else { return };
    let mut flow = Flow::start(&broker, "heal").await;
    let mut seen = HashSet::new();
    let start = Instant::now();
    let first = first_after(
        &mut flow.rx,
        &mut seen,
        &flow.acked,
        start,
        Duration::from_secs(60),
    )
    .await;
    assert!(first.is_some(), "nothing flowed before the restarts");

    let mut back = Instant::now();
    for round in 1..=ROUNDS {
        preload(&flow.bus, &flow.topic, PRELOAD).await;
        broker.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        broker.restart();
        back = Instant::now();
        let took = first_after(&mut flow.rx, &mut seen, &flow.acked, back, RECOVERY).await;
        eprintln!("round {round}: delivering again {took:?} after the broker came back");
        assert!(
            took.is_some(),
            "round {round}: no delivery within {RECOVERY:?}"
        );
    }

    // Acks from before the loss died with the broker's memory (its durability is ours);
    // everything acked since the last return must be delivered.
    tokio::time::sleep(Duration::from_secs(2)).await;
    flow.load.abort();
    let mut missing: HashSet<String> = flow
        .acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, at)| **at >= back && !seen.contains(*p))
        .map(|(p, _)| p.clone())
        .collect();
    let deadline = tokio::time::Instant::now() + RECOVERY;
    while !missing.is_empty() {
        match tokio::time::timeout_at(deadline, flow.rx.recv()).await {
            Ok(Some(p)) => {
                missing.remove(&p);
            }
            _ => break,
        }
    }
    assert!(
        missing.is_empty(),
        "acked after the return, never delivered: {missing:?}"
    );
    flow.finish().await;
}

/// A broker that goes away keeping its state (frozen, then thawed): delivery resumes within
/// 10 s and every acknowledged message arrives, including those acked before the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_loses_nothing_when_the_broker_keeps_its_state() {
    let Some(broker) = tansu() else { return };
    let mut flow = Flow::start(&broker, "keep").await;
    let mut seen = HashSet::new();
    let first = first_after(
        &mut flow.rx,
        &mut seen,
        &flow.acked,
        Instant::now(),
        Duration::from_secs(60),
    )
    .await;
    assert!(first.is_some(), "nothing flowed before the outage");

    broker.pause();
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.resume();
    let back = Instant::now();
    let took = first_after(&mut flow.rx, &mut seen, &flow.acked, back, RECOVERY).await;
    eprintln!("delivering again {took:?} after the broker came back");
    assert!(took.is_some(), "no delivery within {RECOVERY:?}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    flow.load.abort();
    // Everything ever acked, also before the outage, counting what `first_after` consumed.
    let want: HashSet<String> = flow.acked.lock().unwrap().keys().cloned().collect();
    let mut delivered = seen;
    let deadline = tokio::time::Instant::now() + RECOVERY;
    while !want.is_subset(&delivered) {
        match tokio::time::timeout_at(deadline, flow.rx.recv()).await {
            Ok(Some(p)) => {
                delivered.insert(p);
            }
            _ => break,
        }
    }
    let missing: Vec<_> = want.difference(&delivered).collect();
    eprintln!(
        "flow.acked: {}, not delivered: {}",
        want.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "flow.acked, never delivered: {missing:?}"
    );
    flow.finish().await;
}
