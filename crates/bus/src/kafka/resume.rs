//! Where a consumer starts reading a partition it was just given, and when it may trust
//! what it knows of the partition's end.
//!
//! Kafka answers a fetch from offset N with the record batch that holds N, and the client
//! drops the records before N. Tansu 0.6 (`dynostore::fetch`) answers with the batches that
//! *start* at N or later, so a group resuming from a committed offset in the middle of a
//! batch never sees the rest of that batch: one or a few messages lost on every handover or
//! restart (seen as a prime job that never completed). So a partition with a committed
//! offset is read from up to `MAX_BATCH` records earlier, which always reaches back to the
//! start of the batch holding it, and the records before the committed offset, already
//! processed, are dropped here (`Resumed::skip`) instead of being delivered again. Our
//! producers batch at most `MAX_BATCH` records; on Kafka proper the rewind only costs a
//! short re-read.
//!
//! The log end comes from librdkafka's cache of fetch responses (`cached_end`), because
//! Tansu's ListOffsets "latest" is short of it. That cache outlives an assignment, so a
//! partition given back to this consumer keeps the end it had when it was last read, until
//! the first fetch answers: `Resumed::end` withholds it until then.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::lag::{list_offsets, offset_in};

/// Most records one of our producers puts in a batch, and so how far back a resumed
/// partition is read.
pub(crate) const MAX_BATCH: i64 = 1000;
/// The two offset queries below share this budget.
const BUDGET: Duration = Duration::from_secs(5);

/// What a consumer knows of the partitions it was given since they were assigned.
#[derive(Default)]
pub(crate) struct Resumed {
    /// Any entry: the per-message check is one atomic load when there is none.
    any: AtomicBool,
    map: Mutex<HashMap<i32, Entry>>,
}

#[derive(Default, Clone, Copy)]
struct Entry {
    /// The committed offset the partition must be delivered from.
    floor: Option<i64>,
    /// The cached end when the partition was assigned, until a fetch has answered since.
    stale_end: Option<i64>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.floor.is_none() && self.stale_end.is_none()
    }
}

impl Resumed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the partition's entry, made if missing.
    fn update(&self, partition: i32, f: impl FnOnce(&mut Entry)) {
        self.with_entry(partition, true, f);
    }

    /// Runs `f` on the partition's entry (made if missing when `make`; else None without
    /// one), and drops the entry once it holds nothing.
    fn with_entry<T>(
        &self,
        partition: i32,
        make: bool,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        let mut map = self.lock();
        let entry = match make {
            true => map.entry(partition).or_default(),
            false => map.get_mut(&partition)?,
        };
        let out = f(entry);
        if entry.is_empty() {
            map.remove(&partition);
            self.any.store(!map.is_empty(), Ordering::Release);
        } else if make {
            self.any.store(true, Ordering::Release);
        }
        Some(out)
    }

    /// Forgets `parts` (given away) or, with `None`, all (the log restarted).
    pub(crate) fn clear(&self, parts: Option<&[i32]>) {
        let mut map = self.lock();
        match parts {
            Some(parts) => parts.iter().for_each(|p| {
                map.remove(p);
            }),
            None => map.clear(),
        }
        self.any.store(!map.is_empty(), Ordering::Release);
    }

    /// True when the record at `offset` comes before its partition's floor: already
    /// processed, re-read only to reach the batch start. The first record at or past the
    /// floor lifts it. Any record also means a fetch has answered: the cached end is fresh.
    pub(crate) fn skip(&self, topic: &str, partition: i32, offset: i64) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        // Partitions without an entry (most, most of the time) change nothing.
        self.with_entry(partition, false, |e| {
            e.stale_end = None;
            match e.floor {
                Some(floor) if offset < floor => true,
                Some(floor) => {
                    if offset > floor {
                        tracing::warn!(
                            topic,
                            partition,
                            floor,
                            offset,
                            "the broker returned no records from the committed offset up to this one"
                        );
                    }
                    e.floor = None;
                    false
                }
                None => false,
            }
        })
        .unwrap_or(false)
    }

    /// The partition's end as cached (`cached`), or None while it may still be the one from
    /// before the assignment (unchanged, and no record delivered since).
    pub(crate) fn end(&self, partition: i32, cached: i64) -> Option<i64> {
        self.with_entry(partition, false, |e| match e.stale_end {
            Some(before) if before == cached => None,
            _ => {
                e.stale_end = None;
                Some(cached)
            }
        })
        .unwrap_or(Some(cached))
    }
}

/// librdkafka's cached high watermark of a partition: what the last fetch response said,
/// no broker round trip. None when it has never been fetched.
pub(crate) fn cached_end<X: ConsumerContext, C: Consumer<X>>(
    consumer: &C,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let name = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client handle lives as long as `consumer`; `name` is NUL-terminated and
    // outlives the call; `low` and `high` are valid for writes. The call only reads
    // librdkafka's cached offsets (rd_kafka_get_watermark_offsets; rdkafka wraps only the
    // querying variant, which is Tansu's short ListOffsets).
    #[allow(unsafe_code)]
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            name.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// Sets the start of every partition of `tpl` that has a committed offset to `MAX_BATCH`
/// records before it (not before the log start), and notes the committed offset as its
/// floor. Partitions with nothing committed keep their offset (`auto.offset.reset`). When
/// the broker does not answer, `tpl` is left as it is: the committed offset is used.
pub(crate) fn rewind<X: ConsumerContext, C: Consumer<X>>(
    consumer: &C,
    tpl: &mut TopicPartitionList,
    resumed: &Resumed,
) {
    for e in tpl.elements() {
        if let Some(end) = cached_end(consumer, e.topic(), e.partition()) {
            resumed.update(e.partition(), |r| r.stale_end = Some(end));
        }
    }
    let deadline = Instant::now() + BUDGET;
    let left = || deadline.saturating_duration_since(Instant::now());
    let committed = match consumer.committed_offsets(tpl.clone(), left()) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("cannot read committed offsets to rewind: {e}");
            return;
        }
    };
    let at_commit: Vec<(String, i32, i64)> = committed
        .elements()
        .iter()
        .filter_map(|e| match (e.error(), e.offset()) {
            (Ok(()), Offset::Offset(c)) if c > 0 => Some((e.topic().to_string(), e.partition(), c)),
            _ => None,
        })
        .collect();
    if at_commit.is_empty() {
        return;
    }
    let mut query = TopicPartitionList::new();
    for (topic, partition, _) in &at_commit {
        query.add_partition(topic, *partition);
    }
    let Some(starts) = list_offsets(consumer, &query, Offset::Beginning, left()) else {
        return;
    };
    for (topic, partition, committed) in at_commit {
        let Some(low) = offset_in(&starts, &topic, partition) else {
            continue;
        };
        let at = start_at(committed, low);
        if at < committed {
            resumed.update(partition, |r| r.floor = Some(committed));
        }
        if let Some(mut e) = tpl.find_partition(&topic, partition) {
            let _ = e.set_offset(Offset::Offset(at));
        }
    }
}

/// Where to read from for a committed offset, given the log's start. (Not limited by the
/// log's end: Tansu's ListOffsets "latest" is short of it, see `fetched_ends`. A log that
/// went backwards past the committed offset is caught by `rewind_lost_logs`.)
fn start_at(committed: i64, low: i64) -> i64 {
    (committed - MAX_BATCH).max(low).min(committed)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_partition_is_read_from_a_batch_earlier_but_not_before_the_log() {
        assert_eq!(start_at(5000, 0), 4000);
        assert_eq!(start_at(50, 0), 0);
        assert_eq!(start_at(50, 30), 30);
        assert_eq!(start_at(20, 30), 20, "never after the committed offset");
    }

    #[test]
    fn records_before_the_floor_are_dropped_until_it_is_reached() {
        let r = Resumed::default();
        assert!(!r.skip("t", 0, 3), "no floor");
        r.update(0, |e| e.floor = Some(10));
        r.update(1, |e| e.floor = Some(4));
        assert!(r.skip("t", 0, 9));
        assert!(!r.skip("t", 2, 0), "another partition");
        assert!(!r.skip("t", 0, 10));
        assert!(!r.skip("t", 0, 3), "the floor is lifted once reached");
        r.clear(Some(&[1]));
        assert!(!r.skip("t", 1, 2), "given away");
        assert!(!r.any.load(Ordering::Relaxed));
    }

    #[test]
    fn an_end_cached_before_the_assignment_counts_once_a_fetch_answered() {
        let r = Resumed::default();
        assert_eq!(r.end(0, 50), Some(50), "not reassigned: as cached");
        r.update(0, |e| e.stale_end = Some(50));
        r.update(1, |e| e.stale_end = Some(70));
        assert_eq!(r.end(0, 50), None, "maybe from before");
        assert_eq!(r.end(0, 80), Some(80), "changed: a fetch answered");
        assert_eq!(r.end(0, 50), Some(50), "fresh from then on");
        assert!(!r.skip("t", 1, 70));
        assert_eq!(r.end(1, 70), Some(70), "a record came: fresh");
        assert!(!r.any.load(Ordering::Relaxed));
    }
}
