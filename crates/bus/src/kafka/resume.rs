//! Where a consumer starts reading a partition it was just given.
//!
//! Kafka answers a fetch from offset N with the record batch that holds N, and the client
//! drops the records before N. Tansu 0.6 (`dynostore::fetch`) answers with the batches that
//! *start* at N or later, so a group resuming from a committed offset in the middle of a
//! batch never sees the rest of that batch: one or a few messages lost on every handover or
//! restart (seen as a prime job that never completed). So a partition with a committed
//! offset is read from up to `MAX_BATCH` records earlier, which always reaches back to the
//! start of the batch holding it, and the records before the committed offset, already
//! processed, are dropped here (`Floors`) instead of being delivered again. Our producers
//! batch at most `MAX_BATCH` records; on Kafka proper the rewind only costs a short re-read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::{list_offsets, offset_in};

/// Most records one of our producers puts in a batch, and so how far back a resumed
/// partition is read.
pub(crate) const MAX_BATCH: i64 = 1000;
/// The two offset queries below share this budget.
const BUDGET: Duration = Duration::from_secs(5);

/// Per partition, the committed offset a resumed partition must be delivered from.
#[derive(Default)]
pub(crate) struct Floors {
    /// Any floor set: the per-message check is one relaxed load when none is.
    any: AtomicBool,
    map: Mutex<HashMap<i32, i64>>,
}

impl Floors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, i64>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, partition: i32, floor: i64) {
        self.lock().insert(partition, floor);
        self.any.store(true, Ordering::Release);
    }

    /// Forgets the floors of `parts` (given away) or, with `None`, all (the log restarted).
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
    /// floor lifts it.
    pub(crate) fn skip(&self, topic: &str, partition: i32, offset: i64) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let mut map = self.lock();
        let Some(&floor) = map.get(&partition) else {
            return false;
        };
        if offset < floor {
            return true;
        }
        if offset > floor {
            tracing::warn!(
                topic,
                partition,
                floor,
                offset,
                "the broker returned no records from the committed offset up to this one"
            );
        }
        map.remove(&partition);
        self.any.store(!map.is_empty(), Ordering::Release);
        false
    }
}

/// Sets the start of every partition of `tpl` that has a committed offset to `MAX_BATCH`
/// records before it (not before the log start), and notes the committed offset as its
/// floor. Partitions with nothing committed keep their offset (`auto.offset.reset`). When
/// the broker does not answer, `tpl` is left as it is: the committed offset is used.
pub(crate) fn rewind<X: ConsumerContext, C: Consumer<X>>(
    consumer: &C,
    tpl: &mut TopicPartitionList,
    floors: &Floors,
) {
    let deadline = Instant::now() + BUDGET;
    let left = || deadline.saturating_duration_since(Instant::now());
    let committed = match consumer.committed_offsets(tpl.clone(), left()) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("cannot read committed offsets to rewind: {e}");
            return;
        }
    };
    let resumed: Vec<(String, i32, i64)> = committed
        .elements()
        .iter()
        .filter_map(|e| match (e.error(), e.offset()) {
            (Ok(()), Offset::Offset(c)) if c > 0 => Some((e.topic().to_string(), e.partition(), c)),
            _ => None,
        })
        .collect();
    if resumed.is_empty() {
        return;
    }
    let mut query = TopicPartitionList::new();
    for (topic, partition, _) in &resumed {
        query.add_partition(topic, *partition);
    }
    let Some(starts) = list_offsets(consumer, &query, Offset::Beginning, left()) else {
        return;
    };
    for (topic, partition, committed) in resumed {
        let Some(low) = offset_in(&starts, &topic, partition) else {
            continue;
        };
        let at = start_at(committed, low);
        if at < committed {
            floors.set(partition, committed);
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
        let f = Floors::default();
        assert!(!f.skip("t", 0, 3), "no floor");
        f.set(0, 10);
        f.set(1, 4);
        assert!(f.skip("t", 0, 9));
        assert!(!f.skip("t", 2, 0), "another partition");
        assert!(!f.skip("t", 0, 10));
        assert!(!f.skip("t", 0, 3), "the floor is lifted once reached");
        f.clear(Some(&[1]));
        assert!(!f.skip("t", 1, 2), "given away");
        assert!(!f.any.load(Ordering::Relaxed));
    }
}
