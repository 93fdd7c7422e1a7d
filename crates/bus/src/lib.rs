//! The message bus: durable publish, keyed ordering, consumer groups with at-least-once
//! delivery. `memory` runs inside one process; `kafka` speaks to any Kafka-compatible broker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub mod claims;
pub mod kafka;
pub mod memory;
mod meters;
mod rejoin;

pub use kafka::{KafkaBus, KafkaConfig};
pub use memory::MemoryBus;
pub use meters::total_lag;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker is unreachable, or did not acknowledge in time: retryable, maps to 503.
    #[error("bus unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The consumer was closed (shutdown).
    #[error("consumer closed")]
    Closed,
    #[error("bus error: {0}")]
    Other(#[source] BoxError),
}

/// The cause a `BusError` keeps: the client's own error, or a sentence where there is none.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub type BusResult<T> = Result<T, BusError>;

/// One delivered message. `partition`/`offset` identify it for `commit`.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Bytes>,
    pub payload: Bytes,
    pub headers: Vec<(String, Bytes)>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// A message to publish. Messages with the same key keep their order.
#[derive(Debug, Clone, Default)]
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub headers: &'a [(&'a str, &'a [u8])],
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// "memory" or "kafka", for /ready and logs (decide on `in_process`).
    fn kind(&self) -> &'static str;
    /// True for the in-process bus: its messages live only as long as this process.
    fn in_process(&self) -> bool;
    /// Asks the broker for metadata; `Err(Unavailable)` when it does not answer quickly.
    async fn ping(&self) -> BusResult<()>;
    /// Returns once the broker has durably accepted the message (acks=all for Kafka).
    async fn publish(&self, msg: Outgoing<'_>) -> BusResult<()>;
    /// Joins consumer group `group` on `topic`. Messages not committed by a consumer that
    /// goes away are delivered again to the group (at least once).
    async fn subscribe(&self, topic: &str, group: &str) -> BusResult<Box<dyn Consumer>>;
    /// Like `subscribe`, but a group with nothing committed yet starts at the end of the log,
    /// not its start: for consumers that only want what is published from now on (replies
    /// to requests not sent yet). Once the group has committed, it resumes from there.
    async fn subscribe_from_end(&self, topic: &str, group: &str) -> BusResult<Box<dyn Consumer>> {
        self.subscribe(topic, group).await
    }
    /// Waits for queued produce acknowledgements (used at shutdown).
    async fn flush(&self) -> BusResult<()>;
    /// Creates `topic` with `partitions` partitions unless it exists. `publish` and
    /// `subscribe` create missing topics with a default count, so this is only needed to
    /// choose the count.
    async fn ensure_topic(&self, _topic: &str, _partitions: i32) -> BusResult<()> {
        Ok(())
    }
    /// Keeps `topic`'s messages only `retention` when this bus creates the topic (Kafka:
    /// `retention.ms`, with `cleanup.policy=delete` and `segment.ms` alike): for topics
    /// whose messages are worthless soon after they are sent (requests and replies), so a
    /// long-running broker does not keep them all. Call it before the topic's first use; a
    /// topic that already exists on the broker keeps its own settings. The in-process bus
    /// keeps nothing once consumed and ignores it.
    fn set_retention(&self, _topic: &str, _retention: Duration) {}
    /// Shutdown: every `recv`, waiting or to come, returns `Closed`; commits and
    /// `Consumer::close` still work. Kafka keeps accepting publishes (they are durable);
    /// the in-process bus refuses them with `Unavailable`, as nothing would consume them.
    fn close(&self) {}
}

#[async_trait]
pub trait Consumer: Send {
    /// The next message; waits until one arrives (the Kafka consumer rides out broker
    /// outages inside `recv`). `Closed` is final. Cancel-safe: a `recv` dropped in a
    /// `select!` loses no message.
    async fn recv(&mut self) -> BusResult<Message>;
    /// Marks `msg` (and everything before it on its partition) as processed.
    async fn commit(&mut self, msg: &Message) -> BusResult<()>;
    /// Leaves the group after making sure the commits made so far reached the broker
    /// (shutdown). Dropping does the same in the background; `close` lets you wait for it.
    async fn close(&mut self) -> BusResult<()> {
        Ok(())
    }
}

pub type SharedBus = Arc<dyn Bus>;

/// The consumer group for a service's workers (`base`) on `topic`: `base` on the service's
/// default topic, `base.topic` on any other, so deployments (or tests) sharing a broker
/// never join one group across topics and stall each other's rebalances.
pub fn group_for(base: &str, topic: &str, default_topic: &str) -> String {
    if topic == default_topic {
        base.to_string()
    } else {
        format!("{base}.{topic}")
    }
}

/// What an operator tunes of a Kafka bus (the rest is `KafkaConfig`'s defaults).
#[derive(Debug, Clone, Copy)]
pub struct KafkaTuning {
    /// Consumer-group session, for consumers in the broker's groups.
    pub session: Duration,
    /// Partitions of each topic the bus creates; a topic that exists keeps its own.
    pub partitions: i32,
    /// The longest a consumer's fetch waits for data (`fetch.wait.max.ms`).
    pub fetch_wait: Duration,
}

impl Default for KafkaTuning {
    fn default() -> Self {
        KafkaTuning {
            session: kafka::DEFAULT_SESSION_TIMEOUT,
            partitions: kafka::DEFAULT_PARTITIONS,
            fetch_wait: kafka::DEFAULT_FETCH_WAIT,
        }
    }
}

/// Picks the backend: a broker list → Kafka, none → in-process. Kafka consumers claim their
/// partitions through `claims` when given one (a shared store), else they join the broker's
/// consumer groups.
pub async fn connect(
    brokers: Option<&str>,
    tuning: KafkaTuning,
    claims: Option<Arc<dyn claims::Claims>>,
) -> BusResult<SharedBus> {
    match brokers {
        None | Some("") | Some("memory") | Some("memory://") => Ok(Arc::new(MemoryBus::new())),
        Some(b) => {
            let mut cfg = KafkaConfig::new(b);
            cfg.session_timeout = tuning.session;
            cfg.partitions = tuning.partitions;
            cfg.fetch_wait = tuning.fetch_wait;
            let bus = KafkaBus::connect_with(cfg)?;
            Ok(Arc::new(match claims {
                Some(c) => bus.with_claims(c),
                None => bus,
            }))
        }
    }
}
