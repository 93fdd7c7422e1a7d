//! `KafkaBus`: the producer, the admin client that creates topics (again, after the broker
//! lost them), and `subscribe`, which builds a `KafkaConsumer`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use metrics::Counter;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use tokio::sync::watch;

use super::assign::{self, Assigner, Progress};
use super::config::{new_topic, KafkaConfig};
use super::consumer::KafkaConsumer;
use super::context::Ctx;
use super::errors::{config_error, is_transient_code, map_error, unavailable};
use super::lag::LagPoller;
use super::resume::Resumed;
use crate::claims::{Claims, Keeper};
use crate::meters::{self, LagShare, Op};
use crate::rejoin::Rejoin;
use crate::{Bus, BusError, BusResult, Consumer, Outgoing};

/// What a `KafkaBus` keeps per topic.
struct TopicState {
    /// Known to exist, so `publish` asks the broker to create it only once (cleared when a
    /// publish fails: the broker may have lost it).
    known: bool,
    /// `bus_messages_produced_total{topic}`, resolved once.
    produced: Counter,
    /// `retention.ms` for the topic when this bus creates it (see `Bus::set_retention`).
    retention: Option<Duration>,
}

pub struct KafkaBus {
    cfg: KafkaConfig,
    producer: FutureProducer<Ctx>,
    admin: AdminClient<Ctx>,
    /// Shared with the producer's and admin client's contexts.
    broker_lost: Arc<AtomicBool>,
    /// Every topic published or subscribed to, in one map so a publish takes one lock.
    topics: Mutex<HashMap<String, TopicState>>,
    /// Flips to true at shutdown; every consumer's `recv` watches it.
    closed: watch::Sender<bool>,
    /// With a shared store: partitions are claimed there and assigned by hand, instead of
    /// joining the broker's consumer groups (see `claims`).
    claims: Option<Arc<dyn Claims>>,
}

impl KafkaBus {
    /// Never contacts the broker; fails only on a malformed configuration.
    pub fn connect(brokers: &str) -> BusResult<Self> {
        Self::connect_with(KafkaConfig::new(brokers))
    }

    pub fn connect_with(cfg: KafkaConfig) -> BusResult<Self> {
        if cfg.brokers.trim().is_empty() {
            return Err(BusError::Other("empty Kafka broker list".into()));
        }
        let ctx = Ctx::default();
        let producer = cfg
            .producer()
            .create_with_context(ctx.clone())
            .map_err(config_error)?;
        let admin = cfg.finish(cfg.base()).create_with_context(ctx.clone());
        Ok(KafkaBus {
            producer,
            broker_lost: ctx.broker_lost,
            admin: admin.map_err(config_error)?,
            topics: Mutex::new(HashMap::new()),
            closed: watch::Sender::new(false),
            claims: None,
            cfg,
        })
    }

    /// Consumers claim partitions through `claims` instead of joining broker-side groups.
    pub fn with_claims(mut self, claims: Arc<dyn Claims>) -> Self {
        self.claims = Some(claims);
        self
    }

    /// Joins `group` on `topic`; `reset` is where the group starts when nothing is committed.
    async fn join(&self, topic: &str, group: &str, reset: &str) -> BusResult<Box<dyn Consumer>> {
        // A broker that is down must not stop workers from starting: the consumer joins
        // once it is back, and publishers create the topic too.
        if let Err(e) = self.ensure_known(topic).await {
            tracing::warn!(topic, "topic not ensured before subscribing: {e}");
        }
        let rejoin = self.claims.is_none().then(|| Arc::new(Rejoin::joining()));
        let resumed = Arc::new(Resumed::default());
        let ctx = Ctx {
            rejoin: rejoin.clone(),
            resumed: Some(resumed.clone()),
            ..Ctx::default()
        };
        let broker_lost = ctx.broker_lost.clone();
        let consumer: StreamConsumer<Ctx> = self
            .cfg
            .consumer(group, reset)
            .create_with_context(ctx)
            .map_err(config_error)?;
        let consumer = Arc::new(consumer);
        let progress = Arc::new(Progress::new(topic, self.claims.is_some()));
        let keeper = match &self.claims {
            None => {
                consumer.subscribe(&[topic]).map_err(map_error)?;
                None
            }
            Some(claims) => {
                let assigner =
                    Assigner::new(consumer.clone(), progress.clone(), resumed.clone(), topic);
                let member = assign::member_id();
                Some(Keeper::spawn(
                    claims.clone(),
                    Arc::new(assigner),
                    group,
                    topic,
                    &member,
                ))
            }
        };
        Ok(Box::new(KafkaConsumer {
            lag: LagPoller::spawn(
                consumer.clone(),
                broker_lost,
                resumed.clone(),
                LagShare::new(topic, group),
            ),
            inner: Some(consumer),
            progress,
            keeper,
            closed: self.closed.subscribe(),
            consumed: meters::consumed(topic, group),
            topic: topic.to_string(),
            rejoin,
            resumed,
        }))
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.cfg
    }

    /// Runs `f` on `topic`'s state, adding the topic on first sight.
    fn topic<T>(&self, topic: &str, f: impl FnOnce(&mut TopicState) -> T) -> T {
        let mut map = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = map.get_mut(topic) {
            return f(state);
        }
        f(map.entry(topic.to_string()).or_insert_with(|| TopicState {
            known: false,
            produced: meters::produced(topic),
            retention: None,
        }))
    }

    fn is_known(&self, topic: &str) -> bool {
        self.topic(topic, |t| t.known)
    }

    fn set_known(&self, topic: &str, known: bool) {
        self.topic(topic, |t| t.known = known);
    }

    fn count_produced(&self, topic: &str) {
        self.topic(topic, |t| t.produced.increment(1));
    }

    /// Creates `topic` unless it exists, with its retention if one was set (a topic that
    /// exists keeps its own settings). `Unavailable` when the broker does not answer.
    async fn create_topic(&self, topic: &str, partitions: i32) -> BusResult<()> {
        let retention = self
            .topic(topic, |t| t.retention)
            .map(|r| r.as_millis().max(1).to_string());
        let new = new_topic(
            topic,
            partitions,
            self.cfg.replication,
            retention.as_deref(),
        );
        let opts = AdminOptions::new()
            .request_timeout(Some(self.cfg.message_timeout))
            .operation_timeout(Some(self.cfg.message_timeout));
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(unavailable)?;
        for res in results {
            match res {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) if is_transient_code(code) => {
                    return Err(BusError::Unavailable(
                        format!("create topic {name}: {code}").into(),
                    ))
                }
                // E.g. not authorised to create: the topic may well exist (provisioned by
                // an operator), so go on and let produce/consume tell.
                Err((name, code)) => {
                    tracing::warn!(topic = %name, "cannot create topic: {code}");
                }
            }
        }
        self.set_known(topic, true);
        Ok(())
    }

    async fn ensure_known(&self, topic: &str) -> BusResult<()> {
        // A plain load first: every publish passes here, and a swap would write the shared
        // cache line each time although the flag is almost never set.
        if self.broker_lost.load(Ordering::Relaxed)
            && self.broker_lost.swap(false, Ordering::Relaxed)
        {
            let mut map = self.topics.lock().unwrap_or_else(|e| e.into_inner());
            map.values_mut().for_each(|t| t.known = false);
        }
        if self.is_known(topic) {
            return Ok(());
        }
        self.create_topic(topic, self.cfg.partitions).await
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<(), KafkaError> {
        let mut headers = OwnedHeaders::new_with_capacity(msg.headers.len());
        for (key, value) in msg.headers {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let mut rec = FutureRecord::<[u8], [u8]>::to(msg.topic)
            .payload(msg.payload)
            .headers(headers);
        if let Some(key) = msg.key {
            rec = rec.key(key);
        }
        // Delivery fails by itself after message.timeout.ms; the outer timeout is a backstop.
        let fut = self
            .producer
            .send(rec, Timeout::After(self.cfg.message_timeout));
        match tokio::time::timeout(self.cfg.message_timeout.saturating_mul(2), fut).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e),
            Err(_) => Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            )),
        }
    }
}

#[async_trait]
impl Bus for KafkaBus {
    fn kind(&self) -> &'static str {
        "kafka"
    }
    fn in_process(&self) -> bool {
        false
    }

    async fn ping(&self) -> BusResult<()> {
        let producer = self.producer.clone();
        let timeout = self.cfg.message_timeout.min(Duration::from_millis(1500));
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(unavailable)
        })
        .await
        .map_err(|e| BusError::Other(format!("ping task: {e}").into()))?
    }

    async fn publish(&self, msg: Outgoing<'_>) -> BusResult<()> {
        if let Err(e) = self.ensure_known(msg.topic).await {
            meters::error(Op::Publish);
            return Err(e);
        }
        match self.send(&msg).await {
            Ok(()) => {
                self.count_produced(msg.topic);
                Ok(())
            }
            Err(e) => {
                meters::error(Op::Publish);
                // The broker may have lost the topic (restarted without storage; a missing
                // topic shows up as a plain timeout): ask again on the next publish.
                self.set_known(msg.topic, false);
                Err(map_error(e))
            }
        }
    }

    async fn subscribe(&self, topic: &str, group: &str) -> BusResult<Box<dyn Consumer>> {
        self.join(topic, group, "earliest").await
    }

    async fn subscribe_from_end(&self, topic: &str, group: &str) -> BusResult<Box<dyn Consumer>> {
        self.join(topic, group, "latest").await
    }

    async fn flush(&self) -> BusResult<()> {
        let producer = self.producer.clone();
        let timeout = self.cfg.message_timeout;
        tokio::task::spawn_blocking(move || producer.flush(timeout).map_err(map_error))
            .await
            .map_err(|e| BusError::Other(format!("flush task: {e}").into()))?
    }

    async fn ensure_topic(&self, topic: &str, partitions: i32) -> BusResult<()> {
        self.create_topic(topic, partitions).await
    }

    fn set_retention(&self, topic: &str, retention: Duration) {
        self.topic(topic, |t| t.retention = Some(retention));
    }

    fn close(&self) {
        self.closed.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;

    /// The mock cluster does not answer CreateTopics: the topic is made on the mock and
    /// marked as known.
    fn bus_on(
        mock: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
        topic: &str,
        partitions: i32,
    ) -> KafkaBus {
        mock.create_topic(topic, partitions, 1).expect("topic");
        let mut cfg = KafkaConfig::new(&mock.bootstrap_servers());
        cfg.message_timeout = Duration::from_secs(2);
        let bus = KafkaBus::connect_with(cfg).expect("config");
        bus.set_known(topic, true);
        bus
    }

    fn out<'a>(topic: &'a str, payload: &'a [u8]) -> Outgoing<'a> {
        Outgoing {
            topic,
            key: Some(b"key"),
            payload,
            headers: &[("h", b"v")],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mock_roundtrip_keeps_key_and_headers() {
        let mock = MockCluster::new(1).expect("mock cluster");
        let bus = bus_on(&mock, "t", 4);
        bus.ping().await.expect("ping");
        bus.publish(out("t", b"hello")).await.expect("publish");
        let mut c = bus.subscribe("t", "g").await.expect("subscribe");
        let m = tokio::time::timeout(Duration::from_secs(30), c.recv())
            .await
            .expect("message in time")
            .expect("message");
        assert_eq!(m.payload.as_ref(), b"hello");
        assert_eq!(m.key.as_deref(), Some(&b"key"[..]));
        assert_eq!(m.header("h"), Some(&b"v"[..]));
        c.commit(&m).await.expect("commit");
        c.close().await.expect("close");
        assert!(matches!(c.recv().await, Err(BusError::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mock_broker_down_is_unavailable_then_recovers() {
        let mock = MockCluster::new(1).expect("mock cluster");
        let bus = bus_on(&mock, "t", 1);
        bus.publish(out("t", b"one")).await.expect("publish");
        mock.broker_down(1).expect("down");
        let res = bus.publish(out("t", b"two")).await;
        assert!(matches!(res, Err(BusError::Unavailable(_))), "{res:?}");
        mock.broker_up(1).expect("up");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // The failed publish made the bus forget the topic; the mock cannot recreate it.
            bus.set_known("t", true);
            match bus.publish(out("t", b"three")).await {
                Ok(()) => break,
                Err(e) => assert!(tokio::time::Instant::now() < deadline, "no recovery: {e}"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mock_counts_and_lag_follow_commits() {
        let rec = crate::meters::testing::TestRecorder::global();
        let mock = MockCluster::new(1).expect("mock cluster");
        let (topic, group) = ("mock-lagged", "mock-lag-group");
        let bus = bus_on(&mock, topic, 2);
        for i in 0..10u8 {
            bus.publish(Outgoing {
                topic,
                key: Some(&[i]),
                payload: &[i],
                headers: &[],
            })
            .await
            .expect("publish");
        }
        let produced = [("topic", topic)];
        assert_eq!(rec.counter("bus_messages_produced_total", &produced), 10);

        let mut c = bus.subscribe(topic, group).await.expect("subscribe");
        // The group is joined (partitions assigned) only once the consumer polls.
        let mut got = Vec::new();
        while got.len() < 10 {
            let m = tokio::time::timeout(Duration::from_secs(30), c.recv())
                .await
                .expect("message in time")
                .expect("message");
            got.push(m);
        }
        let consumed = [("topic", topic), ("group", group)];
        assert_eq!(rec.counter("bus_messages_consumed_total", &consumed), 10);
        // Received is not committed.
        let wait = Duration::from_secs(10);
        rec.wait_lag(topic, group, 10.0, wait).await;
        // Per partition, the first 4 received are the lowest offsets: committing them
        // leaves 6.
        for m in &got[..4] {
            c.commit(m).await.expect("commit");
        }
        rec.wait_lag(topic, group, 6.0, wait).await;
        for m in &got[4..] {
            c.commit(m).await.expect("commit");
        }
        rec.wait_lag(topic, group, 0.0, wait).await;

        bus.publish(out(topic, b"late")).await.expect("publish");
        rec.wait_lag(topic, group, 1.0, wait).await;
        // A closed consumer observes nothing any more.
        c.close().await.expect("close");
        assert_eq!(rec.lag(topic, group), 0.0);
    }
}
