//! `floodgate bench broker`: the broker's own request → echo → reply round trip, with the
//! bus's client settings and no HTTP: the floor under `POST /queue` (scripts/bench-broker).
//!
//! In one process, like one floodgate node: `-c` requesters each publish a request (keyed
//! by its correlation id, acknowledged with acks=all) on a fresh request topic and wait for
//! its reply; an echo consumer answers every request on a fresh reply topic, without
//! awaiting one answer before the next; a reply consumer hands each reply to its requester.
//! The producer and consumers are built from `floodgate_bus::KafkaConfig`, so acks, linger,
//! batch size and the fetch wait are exactly those of the bus. Partitions are assigned by
//! hand (no group join) and nothing is committed: this is the floor, not a worker.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use floodgate_bus::kafka::new_topic;
use floodgate_bus::KafkaConfig;
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message as _, Offset, TopicPartitionList};
use serde_json::json;
use tokio::sync::oneshot;

use crate::args::parse_duration;

/// The broker's request → echo → reply round trip with floodgate's client settings.
#[derive(Debug, Clone, Parser)]
#[command(name = "floodgate bench broker")]
pub struct BrokerArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: String,

    /// Requests in flight (each requester waits for its reply before the next request).
    #[arg(short = 'c', long, default_value_t = 50)]
    pub concurrency: usize,

    /// Measured time, after the warm-up.
    #[arg(short = 'd', long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,

    /// Run this long first without recording.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,

    /// The consumers' `fetch.wait.max.ms`, as floodgate's FLOODGATE_KAFKA_FETCH_WAIT_MS.
    #[arg(long, env = "FLOODGATE_KAFKA_FETCH_WAIT_MS", default_value_t = 10)]
    pub fetch_wait_ms: u64,

    /// Partitions of the two topics, as floodgate's FLOODGATE_KAFKA_PARTITIONS.
    #[arg(long, env = "FLOODGATE_KAFKA_PARTITIONS", default_value_t = 8)]
    pub partitions: i32,

    /// Write rps, p50_latency_ms, p99_latency_ms (the keys of `floodgate bench --json`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Time allowed for one reply before the request counts as lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for topic creation and the first round trip.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

/// What one run measured.
pub struct Measured {
    pub replies: u64,
    pub lost: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

impl Measured {
    pub fn rps(&self) -> f64 {
        self.replies as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn text(&self, args: &BrokerArgs) -> String {
        format!(
            "Broker echo  {}, {} in flight, fetch wait {} ms, acks=all, {} partitions, {:.2}s\n\
             Latency      p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n\
             Requests     {} replies, {:.1} req/s, {} lost\n",
            args.brokers,
            args.concurrency,
            args.fetch_wait_ms,
            args.partitions,
            self.elapsed.as_secs_f64(),
            self.ms(0.5),
            self.ms(0.9),
            self.ms(0.99),
            self.latency_us.max() as f64 / 1000.0,
            self.replies,
            self.rps(),
            self.lost,
        )
    }

    pub fn json(&self, args: &BrokerArgs) -> serde_json::Value {
        json!({
            "scenario": "broker-echo",
            "brokers": args.brokers,
            "concurrency": args.concurrency,
            "fetch_wait_ms": args.fetch_wait_ms,
            "partitions": args.partitions,
            "duration_s": self.elapsed.as_secs_f64(),
            "replies": self.replies,
            "lost": self.lost,
            "rps": self.rps(),
            "p50_latency_ms": self.ms(0.5),
            "p90_latency_ms": self.ms(0.9),
            "p99_latency_ms": self.ms(0.99),
            "max_latency_ms": self.latency_us.max() as f64 / 1000.0,
        })
    }
}

fn err(context: &str, e: impl std::fmt::Display) -> String {
    format!("{context}: {e}")
}

/// Runs the echo round trip on two fresh topics (deleted afterwards).
pub async fn run(args: &BrokerArgs) -> Result<Measured, String> {
    let mut cfg = KafkaConfig::new(&args.brokers);
    cfg.fetch_wait = Duration::from_millis(args.fetch_wait_ms);
    cfg.partitions = args.partitions;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let requests = format!("bench-echo-requests-{run_id}");
    let replies = format!("bench-echo-replies-{run_id}");

    let admin: AdminClient<DefaultClientContext> = cfg
        .producer()
        .create()
        .map_err(|e| err("admin client", e))?;
    create_topics(&admin, &[&requests, &replies], args.partitions).await?;
    let producer: FutureProducer = cfg.producer().create().map_err(|e| err("producer", e))?;
    let echo = assigned(&cfg, &requests, args.partitions, &format!("echo-{run_id}"))?;
    let answers = assigned(&cfg, &replies, args.partitions, &format!("reply-{run_id}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let echo_task = tokio::spawn(echo_loop(
        echo,
        producer.clone(),
        replies.clone(),
        stop.clone(),
    ));
    let reply_task = tokio::spawn(reply_loop(answers, pending.clone(), stop.clone()));

    // One round trip first: the topics exist and every consumer fetches.
    let ids = Arc::new(AtomicU64::new(0));
    let first = tokio::time::timeout(
        SETUP_TIMEOUT,
        round_trip(&producer, &requests, &pending, &ids),
    )
    .await;
    if !matches!(first, Ok(Ok(()))) {
        stop.store(true, Ordering::Relaxed);
        delete_topics(&admin, &[&requests, &replies]).await;
        return Err("no reply to a first request within 30 s".into());
    }

    let start = Instant::now();
    let record_from = start + args.warmup;
    let end = record_from + args.duration;
    let mut requesters = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (producer, requests, pending, ids) = (
            producer.clone(),
            requests.clone(),
            pending.clone(),
            ids.clone(),
        );
        requesters.push(tokio::spawn(async move {
            let mut latency = new_histogram();
            let (mut replies, mut lost) = (0u64, 0u64);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let ok = round_trip(&producer, &requests, &pending, &ids)
                    .await
                    .is_ok();
                let done = Instant::now();
                if sent >= record_from && done <= end {
                    if ok {
                        replies += 1;
                        let _ = latency.record(done.duration_since(sent).as_micros() as u64);
                    } else {
                        lost += 1;
                    }
                }
            }
            (replies, lost, latency)
        }));
    }
    let mut measured = Measured {
        replies: 0,
        lost: 0,
        elapsed: args.duration,
        latency_us: new_histogram(),
    };
    for r in requesters {
        let (replies, lost, latency) = r.await.map_err(|e| err("requester", e))?;
        measured.replies += replies;
        measured.lost += lost;
        let _ = measured.latency_us.add(latency);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(2), echo_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reply_task).await;
    delete_topics(&admin, &[&requests, &replies]).await;
    Ok(measured)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Publishes one request and waits for its reply.
async fn round_trip(
    producer: &FutureProducer,
    topic: &str,
    pending: &Pending,
    ids: &AtomicU64,
) -> Result<(), ()> {
    let id = ids.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    pending.lock().map_err(|_| ())?.insert(id, tx);
    let key = id.to_be_bytes();
    let record = FutureRecord::<[u8], [u8]>::to(topic)
        .key(&key)
        .payload(&key);
    let sent = producer.send(record, Timeout::After(REPLY_TIMEOUT)).await;
    let answered = match sent {
        Ok(_) => matches!(tokio::time::timeout(REPLY_TIMEOUT, rx).await, Ok(Ok(()))),
        Err(_) => false,
    };
    if !answered {
        if let Ok(mut p) = pending.lock() {
            p.remove(&id);
        }
        return Err(());
    }
    Ok(())
}

/// A consumer with every partition of `topic` assigned from the start (no group join).
fn assigned(
    cfg: &KafkaConfig,
    topic: &str,
    partitions: i32,
    group: &str,
) -> Result<StreamConsumer, String> {
    let consumer: StreamConsumer = cfg
        .consumer(group, "earliest")
        .create()
        .map_err(|e| err("consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| err("assignment", e))?;
    }
    consumer.assign(&tpl).map_err(|e| err("assign", e))?;
    Ok(consumer)
}

/// Answers every request on `replies` (same key, same payload); answers are not awaited one
/// by one.
async fn echo_loop(
    consumer: StreamConsumer,
    producer: FutureProducer,
    replies: String,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
        else {
            continue;
        };
        let key = m.key().unwrap_or_default().to_vec();
        let payload = m.payload().unwrap_or_default().to_vec();
        let (producer, replies) = (producer.clone(), replies.clone());
        tokio::spawn(async move {
            let record = FutureRecord::<[u8], [u8]>::to(&replies)
                .key(&key)
                .payload(&payload);
            let _ = producer.send(record, Timeout::After(REPLY_TIMEOUT)).await;
        });
    }
}

/// Hands each reply to the requester waiting for it.
async fn reply_loop(consumer: StreamConsumer, pending: Pending, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
        else {
            continue;
        };
        let Some(id) = m
            .payload()
            .and_then(|p| <[u8; 8]>::try_from(p).ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        let waiting = pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some(tx) = waiting {
            let _ = tx.send(());
        }
    }
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(SETUP_TIMEOUT))
        .operation_timeout(Some(SETUP_TIMEOUT))
}

/// Creates fresh topics like floodgate's request and reply topics (short retention).
async fn create_topics(
    admin: &AdminClient<DefaultClientContext>,
    names: &[&str],
    partitions: i32,
) -> Result<(), String> {
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| new_topic(name, partitions, -1, Some("3600000")))
        .collect();
    let results = admin
        .create_topics(&topics, &admin_options())
        .await
        .map_err(|e| err("create topics", e))?;
    for r in results {
        r.map_err(|(name, code)| format!("create topic {name}: {code}"))?;
    }
    Ok(())
}

async fn delete_topics(admin: &AdminClient<DefaultClientContext>, names: &[&str]) {
    if let Err(e) = admin.delete_topics(names, &admin_options()).await {
        eprintln!("floodgate bench broker: could not delete the bench topics: {e}");
    }
}
