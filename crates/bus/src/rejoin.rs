//! Leaving and rejoining a consumer group whose rebalance changed nothing.
//!
//! Tansu 0.6's coordinator, when a survivor's heartbeat is what expires a dead *leader*,
//! removes the member but keeps it as the group's leader and keeps the old assignment: the
//! survivors rejoin, are handed back exactly the partitions they had, and the dead member's
//! partitions are never consumed again (a member joining later waits for that ghost leader
//! forever). The one way out is a member leaving the group, which makes the coordinator
//! drop the ghost and elect the next joiner. So a consumer that is handed back the very set
//! it had leaves and rejoins, at most once per `MIN_GAP` (a rebalance that legitimately
//! changes nothing for it, e.g. more members than partitions, then costs one extra
//! rebalance now and then, never a loop).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use tokio::sync::Notify;

const MIN_GAP: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct Rejoin {
    state: Mutex<State>,
    wanted: Notify,
}

#[derive(Default)]
struct State {
    /// The partitions of the last assignment.
    last: Option<BTreeSet<(String, i32)>>,
    forced: Option<Instant>,
}

impl Rejoin {
    /// Called with every assignment the group hands out (from the rebalance callback).
    pub(crate) fn assigned(&self, tpl: &TopicPartitionList) {
        let now: BTreeSet<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let unchanged = !now.is_empty() && s.last.as_ref() == Some(&now);
        if unchanged && s.forced.is_none_or(|t| t.elapsed() >= MIN_GAP) {
            tracing::info!(
                partitions = now.len(),
                "rebalance handed back the same partitions; leaving and rejoining the group"
            );
            s.forced = Some(Instant::now());
            self.wanted.notify_one();
        }
        s.last = Some(now);
    }

    /// Resolves when the consumer should leave and rejoin (cancel-safe).
    pub(crate) async fn wanted(&self) {
        self.wanted.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Offset;

    fn tpl(parts: &[i32]) -> TopicPartitionList {
        let mut t = TopicPartitionList::new();
        for p in parts {
            t.add_partition_offset("t", *p, Offset::Invalid)
                .expect("partition");
        }
        t
    }

    async fn fired(r: &Rejoin) -> bool {
        tokio::time::timeout(Duration::from_millis(1), r.wanted())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_an_unchanged_assignment_asks_for_a_rejoin_and_not_twice_in_a_row() {
        let r = Rejoin::default();
        r.assigned(&tpl(&[0, 1]));
        assert!(!fired(&r).await, "a first assignment is not a repeat");
        r.assigned(&tpl(&[0, 1, 2, 3]));
        assert!(!fired(&r).await, "a changed assignment is a real rebalance");
        r.assigned(&tpl(&[3, 2, 1, 0]));
        assert!(fired(&r).await, "the same set again");
        r.assigned(&tpl(&[0, 1, 2, 3]));
        assert!(!fired(&r).await, "not again within MIN_GAP");
        r.assigned(&tpl(&[]));
        r.assigned(&tpl(&[]));
        assert!(!fired(&r).await, "an empty assignment is never a repeat");
    }
}
