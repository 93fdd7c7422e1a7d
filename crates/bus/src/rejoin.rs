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
//!
//! The same ghost can keep a member waiting for an assignment that never comes (after the
//! broker was frozen longer than the session, every member's session has expired at once).
//! A consumer that has been without any assignment for `STUCK_AFTER` since it joined or
//! was revoked leaves and rejoins too. An empty assignment is an answer, not a wait: a
//! member of a group with more members than partitions never counts as stuck.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use tokio::sync::Notify;

const MIN_GAP: Duration = Duration::from_secs(30);
/// Well above a normal rebalance (Tansu pauses a rejoining member ~3 s; session 6 s).
const STUCK_AFTER: Duration = Duration::from_secs(15);
/// How often a waiting consumer looks at its assignment.
const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct Rejoin {
    state: Mutex<State>,
    /// Rings when a rejoin is asked for or a wait for an assignment begins.
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// The partitions of the last assignment.
    last: Option<BTreeSet<(String, i32)>>,
    forced: Option<Instant>,
    /// A rejoin asked for by `assigned`, not yet taken by `wanted`.
    asked: bool,
    /// Since when the consumer has been waiting for an assignment (joined or revoked).
    waiting: Option<Instant>,
}

impl Rejoin {
    /// A consumer that has just subscribed: waiting for its first assignment.
    pub(crate) fn joining() -> Self {
        let r = Rejoin::default();
        r.lock().waiting = Some(Instant::now());
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called when the group takes the partitions away (a rebalance begins).
    pub(crate) fn revoked(&self) {
        self.lock().waiting.get_or_insert_with(Instant::now);
        self.changed.notify_one();
    }

    /// Called with every assignment the group hands out (from the rebalance callback).
    pub(crate) fn assigned(&self, tpl: &TopicPartitionList) {
        let now: BTreeSet<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let mut s = self.lock();
        s.waiting = None;
        let unchanged = !now.is_empty() && s.last.as_ref() == Some(&now);
        if unchanged && s.forced.is_none_or(|t| t.elapsed() >= MIN_GAP) {
            tracing::info!(
                partitions = now.len(),
                "rebalance handed back the same partitions; leaving and rejoining the group"
            );
            s.forced = Some(Instant::now());
            s.asked = true;
            self.changed.notify_one();
        }
        s.last = Some(now);
    }

    /// True (once per `MIN_GAP`) when the consumer has waited too long for an assignment.
    fn stuck(&self, now: Instant) -> bool {
        let mut s = self.lock();
        let waited = s.waiting.is_some_and(|t| now >= t + STUCK_AFTER);
        if !waited || s.forced.is_some_and(|t| now < t + MIN_GAP) {
            return false;
        }
        tracing::info!("no assignment for {STUCK_AFTER:?}; leaving and rejoining the group");
        s.forced = Some(now);
        s.waiting = Some(now);
        true
    }

    /// Resolves when the consumer should leave and rejoin (cancel-safe). It is polled with
    /// every receive, so it arms a timer only while the consumer waits for an assignment.
    pub(crate) async fn wanted(&self) {
        loop {
            let waiting = {
                let mut s = self.lock();
                if std::mem::take(&mut s.asked) {
                    return;
                }
                s.waiting.is_some()
            };
            if !waiting {
                self.changed.notified().await;
                continue;
            }
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(CHECK_EVERY) => {
                    if self.stuck(Instant::now()) {
                        return;
                    }
                }
            }
        }
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

    #[test]
    fn only_a_long_wait_without_any_assignment_is_stuck() {
        let r = Rejoin::joining();
        let t0 = Instant::now();
        assert!(!r.stuck(t0), "just joined");
        assert!(r.stuck(t0 + STUCK_AFTER + CHECK_EVERY), "never assigned");
        assert!(
            !r.stuck(t0 + STUCK_AFTER * 2 + CHECK_EVERY),
            "not again within MIN_GAP"
        );
        let r = Rejoin::joining();
        r.assigned(&tpl(&[]));
        assert!(
            !r.stuck(t0 + STUCK_AFTER * 3),
            "an empty assignment is an answer"
        );
        r.revoked();
        let revoked = Instant::now();
        assert!(!r.stuck(revoked + CHECK_EVERY), "a rebalance in progress");
        assert!(
            r.stuck(revoked + STUCK_AFTER + CHECK_EVERY),
            "revoked and never assigned"
        );
    }
}
