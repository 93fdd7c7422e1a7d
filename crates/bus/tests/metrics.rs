//! Bus metrics on every backend: produce/consume counts, errors and consumer lag (the
//! `bus_consumer_lag` gauge and `total_lag()`). Kafka runs when FLOODGATE_TEST_KAFKA_BROKERS
//! is set.

mod common;

use std::time::Duration;

use common::recorder::TestRecorder;
use common::{publish, publish_n, recv_n, unique};
use floodgate_bus::{total_lag, Bus, BusError, KafkaBus, MemoryBus, Outgoing};

/// `total_lag()` is process-wide: the tests that read it take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Kafka measures lag about once a second.
const LAG_WAIT: Duration = Duration::from_secs(10);

fn produced(rec: &TestRecorder, topic: &str) -> u64 {
    rec.counter("bus_messages_produced_total", &[("topic", topic)])
}

fn consumed(rec: &TestRecorder, topic: &str, group: &str) -> u64 {
    rec.counter(
        "bus_messages_consumed_total",
        &[("topic", topic), ("group", group)],
    )
}

fn errors(rec: &TestRecorder, op: &str) -> u64 {
    rec.counter("bus_errors_total", &[("op", op)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_counts_and_lag() {
    let rec = TestRecorder::global();
    let _turn = SERIAL.lock().await;
    let bus = MemoryBus::new();
    let (topic, group) = (unique("lag"), "workers");
    let mut c = bus.subscribe(&topic, group).await.unwrap();
    assert_eq!(rec.lag(&topic, group), 0.0);

    publish_n(&bus, &topic, "m", 5).await;
    assert_eq!(produced(rec, &topic), 5);
    assert_eq!(rec.lag(&topic, group), 5.0);
    assert_eq!(total_lag(), 5);

    // Received but not committed still counts.
    let got = recv_n(&mut c, 5).await;
    assert_eq!(consumed(rec, &topic, group), 5);
    assert_eq!(rec.lag(&topic, group), 5.0);
    c.commit(&got[2]).await.unwrap();
    assert_eq!(rec.lag(&topic, group), 2.0);
    assert_eq!(total_lag(), 2);
    c.commit(&got[4]).await.unwrap();
    assert_eq!(rec.lag(&topic, group), 0.0);
    assert_eq!(total_lag(), 0);

    // A second consumer of the group shares the work, not the lag: it is counted once.
    let c2 = bus.subscribe(&topic, group).await.unwrap();
    for i in 0..3 {
        publish(&bus, &topic, "k", &format!("more{i}")).await;
    }
    assert_eq!(produced(rec, &topic), 8);
    assert_eq!(rec.lag(&topic, group), 3.0);
    assert_eq!(total_lag(), 3);

    // Another group lags on its own.
    let mut other = bus.subscribe(&topic, "audit").await.unwrap();
    assert_eq!(rec.lag(&topic, "audit"), 3.0);
    assert_eq!(total_lag(), 6);
    let m = recv_n(&mut other, 1).await;
    other.commit(&m[0]).await.unwrap();
    assert_eq!(rec.lag(&topic, "audit"), 2.0);
    assert_eq!(consumed(rec, &topic, "audit"), 1);

    // Consumers that are gone observe nothing.
    drop(other);
    drop(c2);
    assert_eq!(rec.lag(&topic, group), 3.0);
    drop(c);
    assert_eq!(rec.lag(&topic, group), 0.0);
    assert_eq!(rec.lag(&topic, "audit"), 0.0);
    assert_eq!(total_lag(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_errors_are_counted() {
    let rec = TestRecorder::global();
    let _turn = SERIAL.lock().await;
    let bus = MemoryBus::new();
    let (t1, t2) = (unique("err"), unique("err"));
    let mut c = bus.subscribe(&t1, "g").await.unwrap();
    let mut other = bus.subscribe(&t2, "g").await.unwrap();
    publish(&bus, &t2, "k", "x").await;
    let m = recv_n(&mut other, 1).await;

    let commits = errors(rec, "commit");
    assert!(matches!(c.commit(&m[0]).await, Err(BusError::Other(_))));
    assert_eq!(errors(rec, "commit"), commits + 1);

    let publishes = errors(rec, "publish");
    bus.close();
    let res = bus
        .publish(Outgoing {
            topic: &t1,
            key: None,
            payload: b"late",
            headers: &[],
        })
        .await;
    assert!(matches!(res, Err(BusError::Unavailable(_))));
    assert_eq!(errors(rec, "publish"), publishes + 1);
    assert_eq!(produced(rec, &t1), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_counts_and_lag() {
    let rec = TestRecorder::global();
    let Some(brokers) = common::service_env("FLOODGATE_TEST_KAFKA_BROKERS") else {
        return;
    };
    let _turn = SERIAL.lock().await;
    let bus = KafkaBus::connect(&brokers).expect("valid Kafka config");
    let (topic, group) = (unique("lag"), unique("g"));
    const N: usize = 10;
    // Different keys spread the messages over the partitions; lag is summed over them.
    publish_n(&bus, &topic, "m", N).await;
    assert_eq!(produced(rec, &topic), N as u64);

    // The consumer gets its partitions once it polls, so receive everything first.
    let mut c = bus.subscribe(&topic, &group).await.unwrap();
    let got = recv_n(&mut c, N).await;
    assert_eq!(consumed(rec, &topic, &group), N as u64);
    // Nothing committed: all N are lag.
    rec.wait_lag(&topic, &group, N as f64, LAG_WAIT).await;
    assert_eq!(total_lag(), N as i64);

    // Within a partition messages come in offset order, so committing the first 4
    // received commits exactly 4.
    for m in &got[..4] {
        c.commit(m).await.unwrap();
    }
    rec.wait_lag(&topic, &group, (N - 4) as f64, LAG_WAIT).await;
    assert_eq!(total_lag(), (N - 4) as i64);
    for m in &got[4..] {
        c.commit(m).await.unwrap();
    }
    rec.wait_lag(&topic, &group, 0.0, LAG_WAIT).await;

    publish(&bus, &topic, "k0", "late").await;
    rec.wait_lag(&topic, &group, 1.0, LAG_WAIT).await;
    c.close().await.unwrap();
    assert_eq!(rec.lag(&topic, &group), 0.0);
    assert_eq!(total_lag(), 0);
}
