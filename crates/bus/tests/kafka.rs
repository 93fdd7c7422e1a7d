//! Kafka-only behaviour: a broker that is down or goes away and comes back.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::tansu::tansu;
use common::{publish, recv_n, recv_within, unique};
use floodgate_bus::{Bus, BusError, KafkaBus, KafkaConfig, Outgoing};
use floodgate_testkit::free_port;

fn msg<'a>(topic: &'a str, payload: &'a str) -> Outgoing<'a> {
    Outgoing {
        topic,
        key: Some(b"k"),
        payload: payload.as_bytes(),
        headers: &[],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_fails_fast() {
    let brokers = format!("127.0.0.1:{}", free_port());
    let mut cfg = KafkaConfig::new(&brokers);
    cfg.message_timeout = Duration::from_secs(2);
    let bus = KafkaBus::connect_with(cfg).expect("connect does not need the broker");

    let started = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(20), bus.ping())
        .await
        .expect("ping returns");
    assert!(matches!(res, Err(BusError::Unavailable(_))), "{res:?}");

    let started_publish = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(20), bus.publish(msg("t", "x")))
        .await
        .expect("publish returns instead of hanging");
    assert!(matches!(res, Err(BusError::Unavailable(_))), "{res:?}");
    eprintln!(
        "ping failed after {:?}, publish after {:?}",
        started_publish - started,
        started_publish.elapsed()
    );

    // Workers must be able to start while the broker is down.
    let sub = tokio::time::timeout(Duration::from_secs(20), bus.subscribe("t", "g"))
        .await
        .expect("subscribe returns");
    assert!(sub.is_ok());
}

#[test]
fn malformed_config_is_an_error() {
    let mut cfg = KafkaConfig::new("127.0.0.1:1");
    cfg.overrides.push(("no.such.property".into(), "1".into()));
    assert!(matches!(
        KafkaBus::connect_with(cfg),
        Err(BusError::Other(_))
    ));
    assert!(KafkaBus::connect("  ").is_err());
}

async fn wait_ready(bus: &KafkaBus) {
    let deadline = Instant::now() + common::WAIT;
    while bus.ping().await.is_err() {
        assert!(Instant::now() < deadline, "broker did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes until the broker takes it (it may need a moment after coming back).
async fn publish_eventually(bus: &KafkaBus, topic: &str, payload: &str) {
    let deadline = Instant::now() + common::WAIT;
    loop {
        match bus.publish(msg(topic, payload)).await {
            Ok(()) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "publish never recovered: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_survives_a_broker_restart() {
    let Some(mut broker) = tansu() else { return };
    let port = broker.port;
    let mut cfg = KafkaConfig::new(&format!("127.0.0.1:{port}"));
    cfg.message_timeout = Duration::from_secs(2);
    let bus = KafkaBus::connect_with(cfg).expect("config");
    wait_ready(&bus).await;

    let topic = unique("restart");
    publish(&bus, &topic, "k", "before").await;
    let mut c = bus.subscribe(&topic, &unique("g")).await.unwrap();
    let got = recv_n(&mut c, 1).await;
    assert_eq!(got[0].payload.as_ref(), b"before");
    c.commit(&got[0]).await.unwrap();
    c.close().await.unwrap();

    broker.kill();
    let started = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(20), bus.publish(msg(&topic, "down")))
        .await
        .expect("publish returns while the broker is down");
    assert!(matches!(res, Err(BusError::Unavailable(_))), "{res:?}");
    eprintln!("publish failed after {:?}", started.elapsed());
    assert!(bus.ping().await.is_err());

    // Same port, same bus: memory storage comes back empty, so the topic is recreated.
    broker.restart();
    wait_ready(&bus).await;
    publish_eventually(&bus, &topic, "after-0").await;
    for i in 1..5 {
        publish(&bus, &topic, "k", &format!("after-{i}")).await;
    }
    let mut c = bus.subscribe(&topic, &unique("g")).await.unwrap();
    let want: HashSet<String> = (0..5).map(|i| format!("after-{i}")).collect();
    // A retried publish may have landed twice (no idempotence), so collect until complete.
    let mut got = HashSet::new();
    while got != want {
        let m = recv_within(&mut c, common::WAIT)
            .await
            .expect("message after restart");
        let text = String::from_utf8_lossy(&m.payload).into_owned();
        assert!(want.contains(&text), "unexpected {text}");
        got.insert(text);
    }
    c.close().await.unwrap();
}
