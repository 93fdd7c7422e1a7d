//! Connection settings and the librdkafka configuration built from them: one place that
//! says how the bus's producer, consumers and admin client talk to the broker.

use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use super::resume::MAX_BATCH;

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

    pub(super) fn base(&self) -> ClientConfig {
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

    pub(super) fn finish(&self, mut cfg: ClientConfig) -> ClientConfig {
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
