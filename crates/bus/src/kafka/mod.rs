//! Kafka-protocol bus on librdkafka (works with Apache Kafka, Redpanda, Tansu, ...).
//!
//! Nothing here talks to the broker at construction time: the server must start, and report
//! not-ready, while the broker is down. Every call that needs the broker is bounded in time
//! and reports `Unavailable` instead of hanging.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use metrics::Counter;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol,
    StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::util::Timeout;
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio::sync::{oneshot, watch};

use crate::claims::{Claims, Keeper};
use crate::meters::{self, LagShare, Op};
use crate::rejoin::Rejoin;
use crate::{Bus, BusError, BusResult, Consumer, Message, Outgoing};

mod assign;
mod resume;

use assign::{Assigner, Offsets, Progress};
use resume::{Resumed, MAX_BATCH};

/// Connection settings. `KafkaConfig::new(brokers)` gives the defaults used by `connect`.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    /// Partitions for topics this bus creates.
    pub partitions: i32,
    /// Replication factor for topics this bus creates; -1 = the broker's default.
    pub replication: i32,
    /// How long `publish` waits for the durable ack before reporting `Unavailable`.
    pub message_timeout: Duration,
    /// Producer idempotence (no duplicates from librdkafka's own retries). Off by default:
    /// a broker that forgets producer ids (Tansu with memory storage, after a restart)
    /// answers UNKNOWN_PRODUCER_ID forever and librdkafka never recovers. Without it,
    /// one request in flight per connection keeps per-key order across retries.
    pub idempotence: bool,
    /// Consumer-group session: how long a member killed without leaving keeps its
    /// partitions (librdkafka's default is 45 s; see docs/operations.md, "Failover").
    pub session_timeout: Duration,
    /// The longest a consumer's fetch waits for data (`fetch.wait.max.ms`). Apache Kafka
    /// answers as soon as data arrives, so this only bounds idle fetches; Tansu holds every
    /// fetch for the full wait, so each consume hop costs up to this much (see
    /// docs/operations.md, "Broker tuning").
    pub fetch_wait: Duration,
    /// Extra librdkafka properties, applied last (producer, consumer and admin alike).
    pub overrides: Vec<(String, String)>,
}

pub const DEFAULT_PARTITIONS: i32 = 8;
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(8);
pub const DEFAULT_FETCH_WAIT: Duration = Duration::from_millis(10);

/// A topic as floodgate creates it; `retention_ms` (when given) deletes its records after
/// that long.
pub fn new_topic<'a>(
    name: &'a str,
    partitions: i32,
    replication: i32,
    retention_ms: Option<&'a str>,
) -> NewTopic<'a> {
    let new = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    match retention_ms {
        // Apache Kafka deletes whole segments only, and rolls one after 7 days by default:
        // roll them as often as they expire. Tansu's SQL engines delete only in topics
        // whose cleanup policy says so explicitly.
        Some(ms) => new
            .set("cleanup.policy", "delete")
            .set("retention.ms", ms)
            .set("segment.ms", ms),
        None => new,
    }
}

impl KafkaConfig {
    pub fn new(brokers: &str) -> Self {
        KafkaConfig {
            brokers: brokers.to_string(),
            partitions: DEFAULT_PARTITIONS,
            replication: -1,
            message_timeout: Duration::from_secs(5),
            idempotence: false,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            fetch_wait: DEFAULT_FETCH_WAIT,
            overrides: Vec::new(),
        }
    }

    fn base(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers)
            .set("client.id", "floodgate")
            // A broker restart should be noticed in about a second, not ten.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "1000")
            .set("log.connection.close", "false")
            // Bounds how long a request to a vanished broker can hold anything up.
            .set("socket.timeout.ms", "10000")
            .set_log_level(RDKafkaLogLevel::Warning);
        cfg
    }

    fn finish(&self, mut cfg: ClientConfig) -> ClientConfig {
        for (k, v) in &self.overrides {
            cfg.set(k, v);
        }
        cfg
    }

    /// The librdkafka settings of the bus's producer, overrides included (public so a
    /// benchmark can measure the broker with exactly the bus's client settings).
    pub fn producer(&self) -> ClientConfig {
        let ms = self.message_timeout.as_millis().to_string();
        let mut cfg = self.base();
        cfg.set("acks", "all")
            .set("enable.idempotence", self.idempotence.to_string())
            .set(
                "max.in.flight.requests.per.connection",
                if self.idempotence { "5" } else { "1" },
            )
            .set("message.timeout.ms", &ms)
            .set("request.timeout.ms", &ms)
            .set("linger.ms", "1")
            // A consumer resuming mid-batch reads back this far (see `resume`).
            .set("batch.num.messages", MAX_BATCH.to_string());
        self.finish(cfg)
    }

    /// The librdkafka settings of the bus's consumers in `group`, overrides included;
    /// `reset`: where a group with nothing committed starts ("earliest" or "latest").
    pub fn consumer(&self, group: &str, reset: &str) -> ClientConfig {
        // Two heartbeats a second: the survivors learn of a rebalance quickly.
        let heartbeat = (self.session_timeout / 3).min(Duration::from_millis(500));
        let mut cfg = self.base();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", reset)
            .set("enable.partition.eof", "false")
            // Some brokers (Tansu) hold every fetch for the full wait even when messages
            // arrive; librdkafka's 500 ms default would then add half a second per hop.
            .set("fetch.wait.max.ms", self.fetch_wait.as_millis().to_string())
            // A subscribed topic that does not exist yet (or again, after the broker lost
            // it) is picked up within seconds.
            .set("topic.metadata.refresh.interval.ms", "2000")
            // Failover: a member killed without leaving keeps its partitions until its
            // session expires (librdkafka's default: 45 s). 8 s, not Kafka's least (6 s):
            // on Tansu 0.6 a broker stalled longer than the session leaves the groups with
            // no working leader, and 6 s is a stall that happens. See docs/operations.md,
            // "Failover".
            .set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", heartbeat.as_millis().to_string());
        self.finish(cfg)
    }
}

/// Routes librdkafka's own logging into `tracing`, one level quieter: it reports every
/// failed reconnect, which would flood the logs while the broker is down.
///
/// It also notes when every broker went away (`broker_lost`): the broker may come back
/// without its topics, so the bus then creates each topic again before its next use.
#[derive(Clone, Default)]
struct Ctx {
    broker_lost: Arc<AtomicBool>,
    /// A consumer's: sees every assignment (see `rejoin`).
    rejoin: Option<Arc<Rejoin>>,
    /// A consumer's: where resumed partitions start delivering (see `resume`).
    resumed: Option<Arc<Resumed>>,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        // FAIL = a broker connection failed; repeats every reconnect while it is down.
        let level = if fac == "FAIL" {
            RDKafkaLogLevel::Warning
        } else {
            level
        };
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(target: "librdkafka", "{fac}: {msg}")
            }
            RDKafkaLogLevel::Error => tracing::warn!(target: "librdkafka", "{fac}: {msg}"),
            RDKafkaLogLevel::Warning => tracing::info!(target: "librdkafka", "{fac}: {msg}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::debug!(target: "librdkafka", "{fac}: {msg}")
            }
            RDKafkaLogLevel::Debug => tracing::trace!(target: "librdkafka", "{fac}: {msg}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.broker_lost.store(true, Ordering::Relaxed);
        }
        if is_transient(&error) {
            tracing::debug!(target: "librdkafka", "{error}: {reason}");
        } else {
            tracing::warn!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ConsumerContext for Ctx {
    /// librdkafka's default handling (rdkafka's `rebalance`), except that an assignment's
    /// partitions with committed offsets are first rewound (see `resume`).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let (done, rebalance) = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Some(resumed) = &self.resumed {
                    resume::rewind(consumer, tpl, resumed);
                }
                let done = match cooperative {
                    true => consumer.incremental_assign(tpl),
                    false => consumer.assign(tpl),
                };
                (done, Rebalance::Assign(tpl))
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let done = match cooperative {
                    true => consumer.incremental_unassign(tpl),
                    false => consumer.unassign(),
                };
                (done, Rebalance::Revoke(tpl))
            }
            other => {
                let e = KafkaError::Rebalance(other.into());
                (consumer.unassign(), Rebalance::Error(e))
            }
        };
        if let Err(e) = done {
            tracing::warn!("rebalance: {e}");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match (&self.rejoin, rebalance) {
            (Some(rejoin), Rebalance::Assign(tpl)) => rejoin.assigned(tpl),
            (Some(rejoin), Rebalance::Revoke(_)) => rejoin.revoked(),
            _ => {}
        }
    }

    // Asynchronous commits fail only here (served while `recv` polls).
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            meters::error(Op::Commit);
            tracing::debug!("offset commit failed: {e}");
        }
    }
}

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
                    return Err(BusError::Unavailable(format!(
                        "create topic {name}: {code}"
                    )))
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
        .map_err(|e| BusError::Other(format!("ping task: {e}")))?
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
            .map_err(|e| BusError::Other(format!("flush task: {e}")))?
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

/// A member of a consumer group. Commits are asynchronous; the last committed offsets are
/// committed again synchronously when the consumer is closed or dropped, so nothing
/// acknowledged is redelivered after a clean shutdown.
pub struct KafkaConsumer {
    inner: Option<Arc<StreamConsumer<Ctx>>>,
    /// What was committed so far (and, with claims, which partitions are ours).
    progress: Arc<Progress>,
    /// With claims: the task that takes and gives partitions.
    keeper: Option<Keeper>,
    closed: watch::Receiver<bool>,
    lag: Option<LagPoller>,
    consumed: Counter,
    topic: String,
    /// Without claims: the Tansu workaround for broker-side groups.
    rejoin: Option<Arc<Rejoin>>,
    /// Records of resumed partitions to drop (see `resume`).
    resumed: Arc<Resumed>,
}

/// How long a forced rejoin waits for the commits before leaving (the broker may be slow).
const REJOIN_COMMIT_WAIT: Duration = Duration::from_secs(5);
/// How long `close` waits for librdkafka to commit and leave the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `close` waits for the partition claims to be given back.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each consumer measures its lag, and how long one measurement may take.
const LAG_INTERVAL: Duration = Duration::from_secs(1);
const LAG_BUDGET: Duration = Duration::from_secs(2);
const SEEK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a consumer is watched while its broker is away.
const WATCH_CLOSELY: Duration = Duration::from_millis(100);

/// Watches a consumer on a thread of its own (the queries block on the broker, and `recv`
/// must never wait for them): measures its lag, and rewinds partitions whose log the broker
/// lost (see `rewind_lost_logs`).
struct LagPoller {
    /// Dropping it stops the thread.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl LagPoller {
    fn spawn(
        consumer: Arc<StreamConsumer<Ctx>>,
        broker_lost: Arc<AtomicBool>,
        resumed: Arc<Resumed>,
        mut share: LagShare,
    ) -> Option<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("bus-consumer-lag".into())
            .spawn(move || {
                // Right after the broker comes back the check must come before new records
                // pile up past the old positions: watch closely until it answers again.
                let wait = || match broker_lost.load(Ordering::Relaxed) {
                    true => WATCH_CLOSELY,
                    false => LAG_INTERVAL,
                };
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait()) {
                    // On failure (broker away) the last value stands.
                    if let Some(lag) = watch_once(&consumer, &broker_lost, &resumed) {
                        share.set(lag);
                    }
                }
            });
        match spawned {
            Ok(thread) => Some(LagPoller { stop, thread }),
            Err(e) => {
                tracing::warn!("cannot start consumer lag thread: {e}");
                None
            }
        }
    }

    /// Tells the thread to stop; join the handle to know it let go of the consumer.
    fn stop(self) -> JoinHandle<()> {
        drop(self.stop);
        self.thread
    }
}

/// Lag of the partitions assigned to `consumer`: per partition, the high watermark minus the
/// group's committed offset, or minus the log start when nothing is committed yet (offsets
/// reset to earliest). Costs one OffsetFetch (and one batched ListOffsets before the first
/// commit); the ends come from the fetches. `None` when the broker did not answer within
/// `budget`.
fn watch_once(
    consumer: &StreamConsumer<Ctx>,
    broker_lost: &AtomicBool,
    resumed: &Resumed,
) -> Option<i64> {
    let deadline = Instant::now() + LAG_BUDGET;
    let left = || deadline.saturating_duration_since(Instant::now());
    let assigned = consumer.assignment().ok()?;
    if assigned.count() == 0 {
        return Some(0);
    }
    // Positions and committed offsets first: read before the log ends, they can never be
    // ahead of them unless the log really went backwards.
    let positions = consumer.position().ok()?;
    let committed = consumer.committed_offsets(assigned.clone(), left()).ok()?;
    broker_lost.store(false, Ordering::Relaxed);
    let ends = fetched_ends(consumer, &assigned, resumed);
    if rewind_lost_logs(consumer, [&positions, &committed], &ends) {
        // The floors were offsets of the old log.
        resumed.clear(None);
    }
    measure_lag(consumer, &assigned, &committed, &ends, left)
}

/// The high watermarks of `tpl`'s partitions as the last fetch responses gave them (no
/// broker round trip); partitions not fetched yet, or not since they were assigned, are
/// left out (see `resume`). Not ListOffsets: Tansu 0.6 answers "latest" with the newest
/// batch's first offset + 1, short of the end whenever that batch holds several records,
/// which looked like a log gone backwards.
fn fetched_ends(
    consumer: &StreamConsumer<Ctx>,
    tpl: &TopicPartitionList,
    resumed: &Resumed,
) -> TopicPartitionList {
    let mut ends = TopicPartitionList::new();
    for e in tpl.elements() {
        let cached = resume::cached_end(consumer, e.topic(), e.partition());
        if let Some(end) = cached.and_then(|c| resumed.end(e.partition(), c)) {
            let _ = ends.add_partition_offset(e.topic(), e.partition(), Offset::Offset(end));
        }
    }
    ends
}

/// A broker that lost its data (restarted without storage, or the topic deleted and made
/// again) starts the partition's log from 0, while this consumer keeps fetching from its old
/// position and would skip every new record below it: Tansu does not answer such fetches
/// with OFFSET_OUT_OF_RANGE, so librdkafka's own reset never happens. Likewise a commit
/// retried after the broker's return puts an offset of the lost log into the new group. A
/// position or committed offset beyond the log end means exactly that. The loss is the whole
/// topic's, and other partitions may already have grown past their old offsets: read every
/// partition of it from the start. Returns whether it rewound.
fn rewind_lost_logs(
    consumer: &StreamConsumer<Ctx>,
    offsets: [&TopicPartitionList; 2],
    ends: &TopicPartitionList,
) -> bool {
    let elements: Vec<_> = offsets.iter().flat_map(|l| l.elements()).collect();
    let behind = |p: &rdkafka::topic_partition_list::TopicPartitionListElem<'_>| {
        let end = offset_in(ends, p.topic(), p.partition());
        matches!((p.offset(), end), (Offset::Offset(pos), Some(end)) if pos > end)
    };
    let lost: std::collections::HashSet<&str> = elements
        .iter()
        .filter(|p| behind(p))
        .map(|p| p.topic())
        .collect();
    if lost.is_empty() {
        return false;
    }
    for topic in &lost {
        tracing::warn!(
            topic,
            "partition log went backwards (broker lost its data); reading the topic from the start"
        );
    }
    let rewound: Vec<_> = offsets[0]
        .elements()
        .into_iter()
        .filter(|p| lost.contains(p.topic()))
        .collect();
    // The group's offset goes back too: else the stale one would trigger this again, and a
    // partition not fetching yet (mid-rebalance, where seeking fails) would start from it.
    let mut start = TopicPartitionList::new();
    for p in &rewound {
        let _ = start.add_partition_offset(p.topic(), p.partition(), Offset::Offset(0));
    }
    if let Err(e) = consumer.commit(&start, CommitMode::Sync) {
        meters::error(Op::Commit);
        tracing::warn!("committing the rewind failed: {e}");
    }
    for p in &rewound {
        // Fails while the partition is not being fetched; the commit above covers that.
        if let Err(e) = consumer.seek(p.topic(), p.partition(), Offset::Beginning, SEEK_TIMEOUT) {
            tracing::debug!(topic = p.topic(), partition = p.partition(), "rewind: {e}");
        }
    }
    true
}

fn measure_lag(
    consumer: &StreamConsumer<Ctx>,
    assigned: &TopicPartitionList,
    committed: &TopicPartitionList,
    ends: &TopicPartitionList,
    left: impl Fn() -> Duration,
) -> Option<i64> {
    let mut starts = None;
    let mut lag = 0;
    for c in committed.elements() {
        c.error().ok()?;
        // Not fetched yet: no end known, counted from the next measurement on.
        let Some(end) = offset_in(ends, c.topic(), c.partition()) else {
            continue;
        };
        let from = match c.offset() {
            Offset::Offset(o) => o,
            _ => {
                if starts.is_none() {
                    starts = Some(list_offsets(consumer, assigned, Offset::Beginning, left())?);
                }
                offset_in(starts.as_ref()?, c.topic(), c.partition())?
            }
        };
        lag += (end - from).max(0);
    }
    Some(lag)
}

/// ListOffsets for every partition of `tpl`: as a timestamp, `End` asks for the high
/// watermark and `Beginning` for the log start, all partitions in one request per broker.
fn list_offsets<X: ConsumerContext, C: rdkafka::consumer::Consumer<X>>(
    consumer: &C,
    tpl: &TopicPartitionList,
    at: Offset,
    timeout: Duration,
) -> Option<TopicPartitionList> {
    let mut query = tpl.clone();
    query.set_all_offsets(at).ok()?;
    consumer.offsets_for_times(query, timeout).ok()
}

fn offset_in(tpl: &TopicPartitionList, topic: &str, partition: i32) -> Option<i64> {
    let e = tpl.find_partition(topic, partition)?;
    match (e.error(), e.offset()) {
        (Ok(()), Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

impl KafkaConsumer {
    /// Commits and leaves the group on a thread of its own: librdkafka blocks there, for
    /// minutes when the coordinator is unreachable, and a detached thread neither stalls the
    /// async workers nor keeps the runtime from shutting down.
    ///
    /// `keeper`: claims to give back once the commit is done (`close` gives them back itself,
    /// and waits for it).
    fn start_close(&mut self, keeper: Option<Keeper>) -> Option<oneshot::Receiver<()>> {
        let consumer = self.inner.take()?;
        let pending = self.progress.take_all();
        let lag = self.lag.take().map(LagPoller::stop);
        let (done, rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("bus-consumer-close".into())
            .spawn(move || {
                final_commit(&consumer, &pending);
                if let Some(keeper) = keeper {
                    drop(keeper.stop());
                }
                // The lag thread holds the consumer too: the group is left on the last drop.
                if let Some(lag) = lag {
                    let _ = lag.join();
                }
                drop(consumer);
                let _ = done.send(());
            });
        match spawned {
            Ok(_) => Some(rx),
            // The closure, and with it the consumer, was dropped here: closed inline.
            Err(e) => {
                tracing::warn!("cannot start consumer close thread: {e}");
                None
            }
        }
    }
}

/// Resolves once the bus is closed; never if the bus was dropped without closing (this
/// consumer keeps working on its own).
async fn bus_closed(closed: &mut watch::Receiver<bool>) {
    if closed.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn final_commit(consumer: &StreamConsumer<Ctx>, pending: &Offsets) {
    if pending.is_empty() {
        return;
    }
    // After a rewind (see `rewind_lost_logs`) the offsets noted before it belong to a log
    // that no longer exists; committing them would make the group skip the new records.
    let positions = consumer.position().ok();
    let rewound = |topic: &str, partition: i32, next: i64| {
        positions
            .as_ref()
            .and_then(|p| p.find_partition(topic, partition))
            .is_some_and(|e| matches!(e.offset(), Offset::Offset(pos) if pos < next))
    };
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in pending {
        if rewound(topic, *partition, *next) {
            continue;
        }
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
            tracing::warn!(topic, partition, "final offset commit: {e}");
        }
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
        meters::error(Op::Commit);
        tracing::warn!("final offset commit failed: {e}");
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn recv(&mut self) -> BusResult<Message> {
        let consumer = self.inner.as_ref().ok_or(BusError::Closed)?;
        loop {
            let res = tokio::select! {
                biased;
                _ = bus_closed(&mut self.closed) => return Err(BusError::Closed),
                _ = rejoin_wanted(&self.rejoin) => {
                    // Unsubscribing leaves the group; what was committed only asynchronously
                    // so far is committed for sure first, so that only messages never
                    // committed are delivered again.
                    let (c, pending) = (consumer.clone(), self.progress.snapshot());
                    let commit = tokio::task::spawn_blocking(move || final_commit(&c, &pending));
                    let _ = tokio::time::timeout(REJOIN_COMMIT_WAIT, commit).await;
                    consumer.unsubscribe();
                    if let Err(e) = consumer.subscribe(&[&self.topic]) {
                        tracing::warn!(topic = %self.topic, "cannot rejoin the group: {e}");
                    }
                    continue;
                }
                res = consumer.recv() => res,
            };
            match res {
                Ok(msg) => {
                    self.consumed.increment(1);
                    if self
                        .resumed
                        .skip(&self.topic, msg.partition(), msg.offset())
                    {
                        continue;
                    }
                    return Ok(owned(&msg));
                }
                // librdkafka reports broker trouble here but recovers by itself: keep waiting.
                Err(e) if is_transient(&e) => {
                    meters::error(Op::Consume);
                    tracing::debug!("consumer: {e}");
                }
                Err(e) => {
                    meters::error(Op::Consume);
                    return Err(map_error(e));
                }
            }
        }
    }

    async fn commit(&mut self, msg: &Message) -> BusResult<()> {
        let consumer = self.inner.as_ref().ok_or(BusError::Closed)?;
        let next = msg.offset + 1;
        // A partition given to another member since: its offsets are the new owner's now.
        if !self.progress.note(msg.partition, next) {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        let res = tpl
            .add_partition_offset(&msg.topic, msg.partition, Offset::Offset(next))
            .and_then(|()| consumer.commit(&tpl, CommitMode::Async));
        if let Err(e) = res {
            meters::error(Op::Commit);
            return Err(map_error(e));
        }
        Ok(())
    }

    async fn close(&mut self) -> BusResult<()> {
        let keeper = self.keeper.take();
        let Some(done) = self.start_close(None) else {
            return Ok(());
        };
        let left = tokio::time::timeout(CLOSE_TIMEOUT, done).await;
        if let Some(keeper) = keeper {
            let _ = tokio::time::timeout(RELEASE_TIMEOUT, keeper.stop()).await;
        }
        match left {
            Ok(_) => Ok(()),
            Err(_) => Err(BusError::Unavailable(
                "leaving the consumer group timed out".into(),
            )),
        }
    }
}

/// Resolves when a broker-side group member should leave and rejoin; never with claims.
async fn rejoin_wanted(rejoin: &Option<Arc<Rejoin>>) {
    match rejoin {
        Some(r) => r.wanted().await,
        None => std::future::pending().await,
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        let keeper = self.keeper.take();
        let _ = self.start_close(keeper);
    }
}

fn owned(msg: &BorrowedMessage<'_>) -> Message {
    let headers = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let value = h.value.map(Bytes::copy_from_slice).unwrap_or_default();
                    (h.key.to_string(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    Message {
        topic: msg.topic().to_string(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key().map(Bytes::copy_from_slice),
        payload: msg
            .payload()
            .map(Bytes::copy_from_slice)
            .unwrap_or_default(),
        headers,
    }
}

fn config_error(e: KafkaError) -> BusError {
    BusError::Other(format!("invalid Kafka configuration: {e}"))
}

fn unavailable(e: KafkaError) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// Broker trouble (down, timing out, electing leaders) is `Unavailable`: the caller may
/// retry. Only errors that retrying cannot fix are `Other`.
fn map_error(e: KafkaError) -> BusError {
    if is_transient(&e) {
        BusError::Unavailable(e.to_string())
    } else {
        BusError::Other(e.to_string())
    }
}

fn is_transient(e: &KafkaError) -> bool {
    match e {
        KafkaError::AdminOp(code) => is_transient_code(*code),
        KafkaError::Canceled => true,
        other => other.rdkafka_error_code().is_none_or(is_transient_code),
    }
}

fn is_transient_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    !matches!(
        code,
        C::InvalidMessage
            | C::InvalidMessageSize
            | C::MessageSizeTooLarge
            | C::InvalidRecord
            | C::InvalidTopic
            | C::UnknownTopic
            | C::InvalidArgument
            | C::InvalidConfig
            | C::InvalidReplicationFactor
            | C::PolicyViolation
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::Authentication
            | C::SaslAuthenticationFailed
            | C::UnsupportedFeature
            | C::Fatal
    )
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

    #[test]
    fn broker_trouble_is_retryable_and_bad_input_is_not() {
        let down = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert!(matches!(map_error(down), BusError::Unavailable(_)));
        let big = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(matches!(map_error(big), BusError::Other(_)));
        let admin = KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut);
        assert!(matches!(map_error(admin), BusError::Unavailable(_)));
    }
}
