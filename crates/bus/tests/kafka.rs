//! Kafka-only behaviour: a broker that is down or goes away and comes back.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::tansu::tansu;
use common::{publish, recv_n, recv_within, unique};
use floodgate_bus::{Bus, BusError, KafkaBus, KafkaConfig, Outgoing};
use floodgate_testkit::free_port;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

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

/// The configs the broker reports for `topic` (name → value).
async fn topic_configs(brokers: &str, topic: &str) -> HashMap<String, String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
        .await
        .expect("DescribeConfigs answered");
    let resource = described
        .into_iter()
        .next()
        .expect("one resource")
        .unwrap_or_else(|code| panic!("DescribeConfigs {topic}: {code}"));
    resource
        .entries
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}

/// A topic given a retention is created with it (and with a delete cleanup policy and
/// segments rolled as often, so it takes effect); any other topic keeps the broker's
/// default. Tansu answers DescribeConfigs with the configs the topic was created with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_their_retention() {
    let Some(brokers) = common::service_env("FLOODGATE_TEST_KAFKA_BROKERS") else {
        return;
    };
    let bus = KafkaBus::connect(&brokers).expect("config");
    let short = unique("replies");
    let plain = unique("work");
    bus.set_retention(&short, Duration::from_secs(3600));
    publish(&bus, &short, "k", "x").await;
    publish(&bus, &plain, "k", "x").await;

    let got = topic_configs(&brokers, &short).await;
    assert_eq!(
        got.get("retention.ms").map(String::as_str),
        Some("3600000"),
        "{got:?}"
    );
    assert_eq!(
        got.get("cleanup.policy").map(String::as_str),
        Some("delete")
    );
    assert_eq!(got.get("segment.ms").map(String::as_str), Some("3600000"));
    let plain_configs = topic_configs(&brokers, &plain).await;
    assert_ne!(
        plain_configs.get("retention.ms").map(String::as_str),
        Some("3600000"),
        "{plain_configs:?}"
    );
}
