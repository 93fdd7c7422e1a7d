//! `KafkaConsumer`: one member of a consumer group, delivering owned messages, committing
//! asynchronously, and committing for sure once more when it closes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use metrics::Counter;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio::sync::{oneshot, watch};

use super::assign::{Offsets, Progress};
use super::context::Ctx;
use super::errors::{is_transient, map_error};
use super::lag::LagPoller;
use super::resume::Resumed;
use crate::claims::Keeper;
use crate::meters::{self, Op};
use crate::rejoin::Rejoin;
use crate::{BusError, BusResult, Consumer, Message};

/// A member of a consumer group. Commits are asynchronous; the last committed offsets are
/// committed again synchronously when the consumer is closed or dropped, so nothing
/// acknowledged is redelivered after a clean shutdown.
pub struct KafkaConsumer {
    pub(super) inner: Option<Arc<StreamConsumer<Ctx>>>,
    /// What was committed so far (and, with claims, which partitions are ours).
    pub(super) progress: Arc<Progress>,
    /// With claims: the task that takes and gives partitions.
    pub(super) keeper: Option<Keeper>,
    pub(super) closed: watch::Receiver<bool>,
    pub(super) lag: Option<LagPoller>,
    pub(super) consumed: Counter,
    pub(super) topic: String,
    /// Without claims: the Tansu workaround for broker-side groups.
    pub(super) rejoin: Option<Arc<Rejoin>>,
    /// Records of resumed partitions to drop (see `resume`).
    pub(super) resumed: Arc<Resumed>,
}

/// How long a forced rejoin waits for the commits before leaving (the broker may be slow).
const REJOIN_COMMIT_WAIT: Duration = Duration::from_secs(5);
/// How long `close` waits for librdkafka to commit and leave the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `close` waits for the partition claims to be given back.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

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

pub(super) fn final_commit(consumer: &StreamConsumer<Ctx>, pending: &Offsets) {
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
