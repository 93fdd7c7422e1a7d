//! Assigning claimed partitions to a librdkafka consumer by hand (see `crate::claims`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use super::consumer::final_commit;
use super::context::Ctx;
use super::resume::{self, Resumed};
use crate::claims::Partitions;

const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// A consumer's committed offsets on its one topic, and with claims, which partitions it
/// reads now. Shared by `commit` (once per message: one uncontended lock, and no allocation
/// once a partition has been seen) and the claims keeper.
pub(crate) struct Progress {
    topic: String,
    inner: Mutex<Inner>,
}

/// Offsets by (topic, partition), as `final_commit` takes them.
pub(crate) type Offsets = HashMap<(String, i32), i64>;

struct Inner {
    /// partition → next offset to read, as last committed.
    pending: HashMap<i32, i64>,
    /// With claims: the partitions assigned now. None: the broker's group decides.
    owned: Option<HashSet<i32>>,
}

impl Progress {
    pub(crate) fn new(topic: &str, claimed: bool) -> Self {
        Progress {
            topic: topic.to_string(),
            inner: Mutex::new(Inner {
                pending: HashMap::new(),
                owned: claimed.then(HashSet::new),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn offsets(&self, pending: impl IntoIterator<Item = (i32, i64)>) -> Offsets {
        pending
            .into_iter()
            .map(|(p, next)| ((self.topic.clone(), p), next))
            .collect()
    }

    /// Notes `next` as committed; false (nothing noted) when the partition is no longer ours.
    pub(crate) fn note(&self, partition: i32, next: i64) -> bool {
        let mut inner = self.lock();
        if inner
            .owned
            .as_ref()
            .is_some_and(|o| !o.contains(&partition))
        {
            return false;
        }
        inner.pending.insert(partition, next);
        true
    }

    pub(crate) fn snapshot(&self) -> Offsets {
        let pending = self.lock().pending.clone();
        self.offsets(pending)
    }

    pub(crate) fn take_all(&self) -> Offsets {
        let pending = {
            let mut inner = self.lock();
            if let Some(owned) = inner.owned.as_mut() {
                owned.clear();
            }
            std::mem::take(&mut inner.pending)
        };
        self.offsets(pending)
    }

    fn own(&self, parts: &[i32]) {
        if let Some(owned) = self.lock().owned.as_mut() {
            owned.extend(parts);
        }
    }

    /// Forgets `parts`; returns what was committed on them.
    fn disown(&self, parts: &[i32]) -> Offsets {
        let given: Vec<(i32, i64)> = {
            let mut inner = self.lock();
            if let Some(owned) = inner.owned.as_mut() {
                parts.iter().for_each(|p| {
                    owned.remove(p);
                });
            }
            parts
                .iter()
                .filter_map(|p| inner.pending.remove_entry(p))
                .collect()
        };
        self.offsets(given)
    }
}

/// A member id unique to this consumer: host, process, start time and a counter.
pub(crate) fn member_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    format!(
        "{host}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) struct Assigner {
    consumer: Arc<StreamConsumer<Ctx>>,
    progress: Arc<Progress>,
    resumed: Arc<Resumed>,
    topic: String,
}

impl Assigner {
    pub(crate) fn new(
        consumer: Arc<StreamConsumer<Ctx>>,
        progress: Arc<Progress>,
        resumed: Arc<Resumed>,
        topic: &str,
    ) -> Self {
        Assigner {
            consumer,
            progress,
            resumed,
            topic: topic.to_string(),
        }
    }

    fn list(&self, parts: &[i32], at: Offset) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            let _ = tpl.add_partition_offset(&self.topic, *p, at);
        }
        tpl
    }
}

impl Partitions for Assigner {
    fn count(&self) -> Option<i32> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), METADATA_TIMEOUT)
            .ok()?;
        let topic = md.topics().iter().find(|t| t.name() == self.topic)?;
        if topic.error().is_some() {
            return None;
        }
        i32::try_from(topic.partitions().len()).ok()
    }

    fn take(&self, parts: &[i32]) {
        self.progress.own(parts);
        // Stored = the group's committed offset, else `auto.offset.reset`; committed ones
        // are read from a batch earlier (see `resume`).
        let mut tpl = self.list(parts, Offset::Stored);
        resume::rewind(&*self.consumer, &mut tpl, &self.resumed);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let from: Vec<(i32, Offset)> = tpl
                .elements()
                .iter()
                .map(|e| (e.partition(), e.offset()))
                .collect();
            tracing::debug!(topic = %self.topic, ?from, "assigning claimed partitions");
        }
        if let Err(e) = self.consumer.incremental_assign(&tpl) {
            tracing::warn!(topic = %self.topic, ?parts, "cannot assign claimed partitions: {e}");
        }
    }

    fn give(&self, parts: &[i32], handover: bool) {
        if parts.is_empty() {
            return;
        }
        let committed = self.progress.disown(parts);
        tracing::debug!(topic = %self.topic, ?parts, handover, ?committed, "giving partitions up");
        if handover {
            final_commit(&self.consumer, &committed);
        }
        if let Err(e) = self
            .consumer
            .incremental_unassign(&self.list(parts, Offset::Invalid))
        {
            tracing::debug!(topic = %self.topic, ?parts, "cannot unassign partitions: {e}");
        }
        self.resumed.clear(Some(parts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_of_a_partition_given_away_are_not_noted() {
        let p = Progress::new("t", true);
        assert!(!p.note(0, 5), "not ours yet");
        p.own(&[0, 1]);
        assert!(p.note(0, 5));
        assert!(p.note(1, 7));
        assert!(p.note(0, 6));
        let given = p.disown(&[0]);
        assert_eq!(given.get(&("t".to_string(), 0)), Some(&6));
        assert!(!p.note(0, 9), "given away");
        assert_eq!(p.take_all().len(), 1, "partition 1 is still ours");
    }

    #[test]
    fn a_group_member_notes_every_partition() {
        let p = Progress::new("t", false);
        assert!(p.note(3, 1));
        assert_eq!(p.snapshot().len(), 1);
    }
}
