//! A consumer's watcher thread: it measures the consumer's lag, and rewinds partitions
//! whose log the broker lost, off the async workers because every query blocks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use super::context::Ctx;
use super::resume::{self, Resumed};
use crate::meters::{self, LagShare, Op};

/// How often each consumer measures its lag, and how long one measurement may take.
const LAG_INTERVAL: Duration = Duration::from_secs(1);
const LAG_BUDGET: Duration = Duration::from_secs(2);
const SEEK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a consumer is watched while its broker is away.
const WATCH_CLOSELY: Duration = Duration::from_millis(100);

/// Watches a consumer on a thread of its own (the queries block on the broker, and `recv`
/// must never wait for them): measures its lag, and rewinds partitions whose log the broker
/// lost (see `rewind_lost_logs`).
pub(super) struct LagPoller {
    /// Dropping it stops the thread.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl LagPoller {
    pub(super) fn spawn(
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
    pub(super) fn stop(self) -> JoinHandle<()> {
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
pub(super) fn list_offsets<X: ConsumerContext, C: rdkafka::consumer::Consumer<X>>(
    consumer: &C,
    tpl: &TopicPartitionList,
    at: Offset,
    timeout: Duration,
) -> Option<TopicPartitionList> {
    let mut query = tpl.clone();
    query.set_all_offsets(at).ok()?;
    consumer.offsets_for_times(query, timeout).ok()
}

pub(super) fn offset_in(tpl: &TopicPartitionList, topic: &str, partition: i32) -> Option<i64> {
    let e = tpl.find_partition(topic, partition)?;
    match (e.error(), e.offset()) {
        (Ok(()), Offset::Offset(o)) => Some(o),
        _ => None,
    }
}
