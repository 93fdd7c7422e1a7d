//! Assigning claimed partitions to a librdkafka consumer by hand (see `crate::claims`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{final_commit, Ctx};
use crate::claims::Partitions;

const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// A consumer's committed offsets, and with claims, which partitions it reads now. Shared by
/// `commit` (once per message: one uncontended lock) and the claims keeper.
pub(crate) struct Progress(Mutex<Inner>);

struct Inner {
    /// (topic, partition) → next offset to read, as last committed.
    pending: HashMap<(String, i32), i64>,
    /// With claims: the partitions assigned now. None: the broker's group decides.
    owned: Option<HashSet<i32>>,
}

impl Progress {
    pub(crate) fn new(claimed: bool) -> Self {
        Progress(Mutex::new(Inner {
            pending: HashMap::new(),
            owned: claimed.then(HashSet::new),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes `next` as committed; false (nothing noted) when the partition is no longer ours.
    pub(crate) fn note(&self, topic: &str, partition: i32, next: i64) -> bool {
        let mut inner = self.lock();
        if inner
            .owned
            .as_ref()
            .is_some_and(|o| !o.contains(&partition))
        {
            return false;
        }
        match inner.pending.get_mut(&(topic.to_string(), partition)) {
            Some(n) => *n = next,
            None => {
                inner.pending.insert((topic.to_string(), partition), next);
            }
        }
        true
    }

    pub(crate) fn snapshot(&self) -> HashMap<(String, i32), i64> {
        self.lock().pending.clone()
    }

    pub(crate) fn take_all(&self) -> HashMap<(String, i32), i64> {
        let mut inner = self.lock();
        if let Some(owned) = inner.owned.as_mut() {
            owned.clear();
        }
        std::mem::take(&mut inner.pending)
    }

    fn own(&self, parts: &[i32]) {
        if let Some(owned) = self.lock().owned.as_mut() {
            owned.extend(parts);
        }
    }

    /// Forgets `parts`; returns what was committed on them.
    fn disown(&self, parts: &[i32]) -> HashMap<(String, i32), i64> {
        let mut inner = self.lock();
        if let Some(owned) = inner.owned.as_mut() {
            parts.iter().for_each(|p| {
                owned.remove(p);
            });
        }
        let given: Vec<_> = inner
            .pending
            .keys()
            .filter(|(_, p)| parts.contains(p))
            .cloned()
            .collect();
        given
            .into_iter()
            .filter_map(|k| inner.pending.remove_entry(&k))
            .collect()
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
    topic: String,
}

impl Assigner {
    pub(crate) fn new(
        consumer: Arc<StreamConsumer<Ctx>>,
        progress: Arc<Progress>,
        topic: &str,
    ) -> Self {
        Assigner {
            consumer,
            progress,
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
        // Stored = the group's committed offset, else `auto.offset.reset`.
        if let Err(e) = self
            .consumer
            .incremental_assign(&self.list(parts, Offset::Stored))
        {
            tracing::warn!(topic = %self.topic, ?parts, "cannot assign claimed partitions: {e}");
        }
    }

    fn give(&self, parts: &[i32], handover: bool) {
        if parts.is_empty() {
            return;
        }
        let committed = self.progress.disown(parts);
        if handover {
            final_commit(&self.consumer, &committed);
        }
        if let Err(e) = self
            .consumer
            .incremental_unassign(&self.list(parts, Offset::Invalid))
        {
            tracing::debug!(topic = %self.topic, ?parts, "cannot unassign partitions: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_of_a_partition_given_away_are_not_noted() {
        let p = Progress::new(true);
        assert!(!p.note("t", 0, 5), "not ours yet");
        p.own(&[0, 1]);
        assert!(p.note("t", 0, 5));
        assert!(p.note("t", 1, 7));
        assert!(p.note("t", 0, 6));
        let given = p.disown(&[0]);
        assert_eq!(given.get(&("t".to_string(), 0)), Some(&6));
        assert!(!p.note("t", 0, 9), "given away");
        assert_eq!(p.take_all().len(), 1, "partition 1 is still ours");
    }

    #[test]
    fn a_group_member_notes_every_partition() {
        let p = Progress::new(false);
        assert!(p.note("t", 3, 1));
        assert_eq!(p.snapshot().len(), 1);
    }
}
