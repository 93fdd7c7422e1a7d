//! In-process bus for embedded mode.
//!
//! Each topic is one append-only log (a single partition, offset = position). Each consumer
//! group keeps a delivery cursor plus the set of offsets it skipped or got back from a
//! consumer that went away; each consumer keeps its own in-flight (delivered, uncommitted)
//! offsets, so a dropped consumer's work goes back to its group.
//!
//! Per-key order holds even with several consumers in a group: a keyed message is not handed
//! to a consumer while another consumer of the group still holds an uncommitted message with
//! the same key.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use metrics::Counter;
use tokio::sync::Notify;

use crate::meters::{self, LagShare, Op};
use crate::{Bus, BusError, BusResult, Consumer, Message, Outgoing};

/// How many messages a topic keeps for groups that have no live consumer (or for nobody,
/// when no group exists yet). Groups with live consumers never lose a message.
pub const DEFAULT_RETAIN: usize = 100_000;

#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<HashMap<String, Topic>>,
    closed: AtomicBool,
    next_consumer: AtomicU64,
    retain: usize,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::with_retention(DEFAULT_RETAIN)
    }

    /// `retain`: messages kept for groups without live consumers (see [`DEFAULT_RETAIN`]).
    pub fn with_retention(retain: usize) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                state: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                next_consumer: AtomicU64::new(1),
                retain,
            }),
        }
    }

    /// Shutdown: every waiting and future `recv` returns `Closed`, `publish` returns
    /// `Unavailable`.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        for topic in self.inner.lock().values() {
            topic.notify.notify_waiters();
        }
    }

    /// Messages currently held for `topic` (for tests and metrics).
    pub fn retained(&self, topic: &str) -> usize {
        self.inner.lock().get(topic).map_or(0, |t| t.log.len())
    }

    /// Messages of `topic` that `group` has not committed yet (consumer lag).
    pub fn lag(&self, topic: &str, group: &str) -> u64 {
        let state = self.inner.lock();
        let Some(t) = state.get(topic) else { return 0 };
        let low = t.groups.get(group).map_or(t.base, |g| g.low_watermark());
        u64::try_from(t.end() - low).unwrap_or(0)
    }
}

impl Inner {
    /// A poisoned lock only means another thread panicked mid-update; every update below
    /// leaves the state consistent before it can panic, so keep going.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Topic>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Topic {
    /// Offset of `log[0]`.
    base: i64,
    log: VecDeque<Message>,
    groups: HashMap<String, Group>,
    notify: Arc<Notify>,
    produced: Counter,
}

impl Topic {
    fn new(name: &str) -> Self {
        Topic {
            base: 0,
            log: VecDeque::new(),
            groups: HashMap::new(),
            notify: Arc::new(Notify::new()),
            produced: meters::produced(name),
        }
    }

    /// Refreshes every group's lag gauge; called after each change to the log or a group.
    /// A group with no live consumer reports nothing (its consumers' shares went with them).
    fn report_lag(&mut self) {
        let end = self.end();
        for g in self.groups.values_mut() {
            let lag = if g.members.is_empty() {
                0
            } else {
                end - g.low_watermark()
            };
            g.lag.set(lag);
        }
    }

    fn end(&self) -> i64 {
        self.base + self.log.len() as i64
    }

    fn get(&self, offset: i64) -> Option<&Message> {
        let idx = usize::try_from(offset - self.base).ok()?;
        self.log.get(idx)
    }

    /// Hands the next deliverable message of `group` to `consumer`.
    fn deliver(&mut self, group: &str, consumer: u64) -> Option<Message> {
        let end = self.end();
        let g = self.groups.get_mut(group)?;
        let key_of = |off: i64| -> Option<Bytes> {
            let idx = usize::try_from(off - self.base).ok()?;
            self.log.get(idx).and_then(|m| m.key.clone())
        };
        // Skipped/returned offsets are older than the cursor, so they go first.
        let mut pick = g
            .skipped
            .iter()
            .copied()
            .find(|&off| g.may_take(key_of(off).as_ref(), consumer));
        if let Some(off) = pick {
            g.skipped.remove(&off);
        } else {
            while g.cursor < end {
                let off = g.cursor;
                g.cursor += 1;
                if g.may_take(key_of(off).as_ref(), consumer) {
                    pick = Some(off);
                    break;
                }
                g.skipped.insert(off);
            }
        }
        let off = pick?;
        let msg = self.get(off)?.clone();
        let g = self.groups.get_mut(group)?;
        g.take(off, msg.key.clone(), consumer);
        Some(msg)
    }

    /// Drops the log prefix no group needs any more.
    fn trim(&mut self, retain: usize) {
        let end = self.end();
        let mut active = end;
        // With no group at all, a future subscriber still gets the last `retain` messages.
        let mut idle = if self.groups.is_empty() {
            i64::MIN
        } else {
            end
        };
        for g in self.groups.values() {
            let low = g.low_watermark();
            if g.members.is_empty() {
                idle = idle.min(low);
            } else {
                active = active.min(low);
            }
        }
        // Idle groups (and nobody at all) keep at most `retain` messages; live ones keep all.
        let floor = idle.max(end - retain as i64).min(active);
        if floor <= self.base {
            return;
        }
        let drop = usize::try_from(floor - self.base).unwrap_or(0);
        self.log.drain(..drop.min(self.log.len()));
        self.base = floor;
        for g in self.groups.values_mut() {
            g.cursor = g.cursor.max(floor);
            g.skipped = g.skipped.split_off(&floor);
        }
    }
}

struct Group {
    /// Next offset never looked at.
    cursor: i64,
    /// Offsets below the cursor waiting for delivery (key was busy, or given back).
    skipped: BTreeSet<i64>,
    members: HashMap<u64, Member>,
    /// Key → (consumer holding uncommitted messages with it, how many).
    locks: HashMap<Bytes, (u64, usize)>,
    lag: LagShare,
}

#[derive(Default)]
struct Member {
    in_flight: BTreeMap<i64, Option<Bytes>>,
}

impl Group {
    fn starting_at(cursor: i64, lag: LagShare) -> Self {
        Group {
            cursor,
            skipped: BTreeSet::new(),
            members: HashMap::new(),
            locks: HashMap::new(),
            lag,
        }
    }

    fn may_take(&self, key: Option<&Bytes>, consumer: u64) -> bool {
        match key.and_then(|k| self.locks.get(k)) {
            Some((owner, _)) => *owner == consumer,
            None => true,
        }
    }

    fn take(&mut self, offset: i64, key: Option<Bytes>, consumer: u64) {
        if let Some(k) = &key {
            let lock = self.locks.entry(k.clone()).or_insert((consumer, 0));
            lock.1 += 1;
        }
        self.members
            .entry(consumer)
            .or_default()
            .in_flight
            .insert(offset, key);
    }

    fn unlock(&mut self, key: Option<Bytes>) {
        let Some(k) = key else { return };
        if let Some(lock) = self.locks.get_mut(&k) {
            lock.1 = lock.1.saturating_sub(1);
            if lock.1 == 0 {
                self.locks.remove(&k);
            }
        }
    }

    /// Everything below this offset is committed.
    fn low_watermark(&self) -> i64 {
        let mut low = self.cursor;
        if let Some(&s) = self.skipped.first() {
            low = low.min(s);
        }
        for m in self.members.values() {
            if let Some((&f, _)) = m.in_flight.first_key_value() {
                low = low.min(f);
            }
        }
        low
    }

    /// Releases `consumer`'s in-flight offsets up to `upto`; returns whether any key unlocked.
    fn commit(&mut self, consumer: u64, upto: i64) -> bool {
        let Some(m) = self.members.get_mut(&consumer) else {
            return false;
        };
        let rest = m.in_flight.split_off(&(upto + 1));
        let done = std::mem::replace(&mut m.in_flight, rest);
        let mut unlocked = false;
        for (_, key) in done {
            unlocked |= key.is_some();
            self.unlock(key);
        }
        unlocked
    }

    /// The consumer went away: its uncommitted messages go back to the group.
    fn leave(&mut self, consumer: u64) {
        let Some(m) = self.members.remove(&consumer) else {
            return;
        };
        for (off, key) in m.in_flight {
            self.unlock(key);
            self.skipped.insert(off);
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn in_process(&self) -> bool {
        true
    }

    async fn ping(&self) -> BusResult<()> {
        Ok(())
    }

    async fn publish(&self, msg: Outgoing<'_>) -> BusResult<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            meters::error(Op::Publish);
            return Err(BusError::Unavailable("bus closed".into()));
        }
        let mut state = self.inner.lock();
        let topic = state
            .entry(msg.topic.to_string())
            .or_insert_with(|| Topic::new(msg.topic));
        let offset = topic.end();
        topic.log.push_back(Message {
            topic: msg.topic.to_string(),
            partition: 0,
            offset,
            key: msg.key.map(Bytes::copy_from_slice),
            payload: Bytes::copy_from_slice(msg.payload),
            headers: msg
                .headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), Bytes::copy_from_slice(v)))
                .collect(),
        });
        topic.trim(self.inner.retain);
        topic.report_lag();
        topic.produced.increment(1);
        topic.notify.notify_waiters();
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> BusResult<Box<dyn Consumer>> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(BusError::Closed);
        }
        let id = self.inner.next_consumer.fetch_add(1, Ordering::Relaxed);
        let mut state = self.inner.lock();
        let t = state
            .entry(topic.to_string())
            .or_insert_with(|| Topic::new(topic));
        let base = t.base;
        t.groups
            .entry(group.to_string())
            .or_insert_with(|| Group::starting_at(base, LagShare::new(topic, group)))
            .members
            .insert(id, Member::default());
        t.report_lag();
        Ok(Box::new(MemoryConsumer {
            inner: self.inner.clone(),
            notify: t.notify.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
            id,
            left: false,
            consumed: meters::consumed(topic, group),
        }))
    }

    async fn flush(&self) -> BusResult<()> {
        Ok(())
    }

    fn close(&self) {
        MemoryBus::close(self);
    }
}

pub struct MemoryConsumer {
    inner: Arc<Inner>,
    notify: Arc<Notify>,
    topic: String,
    group: String,
    id: u64,
    left: bool,
    consumed: Counter,
}

impl MemoryConsumer {
    /// Leaves the group; uncommitted messages go back to it.
    fn leave(&mut self) {
        if std::mem::replace(&mut self.left, true) {
            return;
        }
        let mut state = self.inner.lock();
        let Some(t) = state.get_mut(&self.topic) else {
            return;
        };
        if let Some(g) = t.groups.get_mut(&self.group) {
            g.leave(self.id);
        }
        t.trim(self.inner.retain);
        t.report_lag();
        t.notify.notify_waiters();
    }

    fn try_next(&self) -> Option<Message> {
        let mut state = self.inner.lock();
        state.get_mut(&self.topic)?.deliver(&self.group, self.id)
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    // Cancel-safe: a message is taken from the group only in the same step that returns it.
    async fn recv(&mut self) -> BusResult<Message> {
        loop {
            // Register for wake-ups before looking, so a publish in between is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.left || self.inner.closed.load(Ordering::SeqCst) {
                return Err(BusError::Closed);
            }
            if let Some(msg) = self.try_next() {
                self.consumed.increment(1);
                return Ok(msg);
            }
            notified.await;
        }
    }

    async fn commit(&mut self, msg: &Message) -> BusResult<()> {
        if self.left {
            return Err(BusError::Closed);
        }
        if msg.topic != self.topic {
            meters::error(Op::Commit);
            return Err(BusError::Other(
                format!(
                    "commit of a message from topic {:?} on a consumer of {:?}",
                    msg.topic, self.topic
                )
                .into(),
            ));
        }
        let mut state = self.inner.lock();
        let Some(t) = state.get_mut(&self.topic) else {
            return Ok(());
        };
        let unlocked = t
            .groups
            .get_mut(&self.group)
            .is_some_and(|g| g.commit(self.id, msg.offset));
        t.trim(self.inner.retain);
        t.report_lag();
        if unlocked {
            // Messages held back behind a busy key may now go to other consumers.
            t.notify.notify_waiters();
        }
        Ok(())
    }

    async fn close(&mut self) -> BusResult<()> {
        self.leave();
        Ok(())
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn out<'a>(topic: &'a str, key: &'a [u8], payload: &'a [u8]) -> Outgoing<'a> {
        Outgoing {
            topic,
            key: Some(key),
            payload,
            headers: &[],
        }
    }

    async fn recv_soon(c: &mut Box<dyn Consumer>) -> Option<Message> {
        tokio::time::timeout(Duration::from_millis(200), c.recv())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// A bus and two consumers of topic "t", in groups `ga` and `gb`.
    async fn two_consumers(
        ga: &str,
        gb: &str,
    ) -> (MemoryBus, Box<dyn Consumer>, Box<dyn Consumer>) {
        let bus = MemoryBus::new();
        let a = bus.subscribe("t", ga).await.unwrap();
        let b = bus.subscribe("t", gb).await.unwrap();
        (bus, a, b)
    }

    #[tokio::test]
    async fn recv_waits_for_a_later_publish() {
        let bus = MemoryBus::new();
        let mut c = bus.subscribe("t", "g").await.unwrap();
        let bus2 = bus.clone();
        let pub_task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            bus2.publish(out("t", b"k", b"late")).await
        });
        let msg = tokio::time::timeout(Duration::from_secs(5), c.recv())
            .await
            .expect("recv woke up")
            .unwrap();
        assert_eq!(msg.payload.as_ref(), b"late");
        pub_task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn close_wakes_waiting_consumers() {
        let bus = MemoryBus::new();
        let mut c = bus.subscribe("t", "g").await.unwrap();
        let waiter = tokio::spawn(async move { c.recv().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        bus.close();
        let res = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("closed recv returns")
            .unwrap();
        assert!(matches!(res, Err(BusError::Closed)));
        assert!(matches!(
            bus.publish(out("t", b"k", b"x")).await,
            Err(BusError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn consumers_of_one_group_share_the_work() {
        let (bus, mut a, mut b) = two_consumers("g", "g").await;
        for i in 0..10u8 {
            bus.publish(out("t", &[i], &[i])).await.unwrap();
        }
        let mut seen = Vec::new();
        while let Some(m) = recv_soon(&mut a).await {
            seen.push(m.offset);
            if seen.len() == 5 {
                break;
            }
        }
        while let Some(m) = recv_soon(&mut b).await {
            seen.push(m.offset);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn busy_key_is_not_handed_to_another_consumer() {
        let (bus, mut a, mut b) = two_consumers("g", "g").await;
        bus.publish(out("t", b"k1", b"first")).await.unwrap();
        bus.publish(out("t", b"k1", b"second")).await.unwrap();
        bus.publish(out("t", b"k2", b"other")).await.unwrap();
        let first = recv_soon(&mut a).await.unwrap();
        assert_eq!(first.payload.as_ref(), b"first");
        // b must skip k1's second message while a holds k1, and get k2 instead.
        let got = recv_soon(&mut b).await.unwrap();
        assert_eq!(got.payload.as_ref(), b"other");
        assert!(recv_soon(&mut b).await.is_none());
        a.commit(&first).await.unwrap();
        let second = recv_soon(&mut b).await.unwrap();
        assert_eq!(second.payload.as_ref(), b"second");
    }

    #[tokio::test]
    async fn log_is_trimmed_once_every_group_committed() {
        let (bus, mut a, mut b) = two_consumers("g1", "g2").await;
        for i in 0..100u8 {
            bus.publish(out("t", b"k", &[i])).await.unwrap();
        }
        let mut last = None;
        for _ in 0..100 {
            last = recv_soon(&mut a).await;
        }
        a.commit(last.as_ref().unwrap()).await.unwrap();
        // g2 has not committed: nothing may go.
        assert_eq!(bus.retained("t"), 100);
        let mut last = None;
        for _ in 0..60 {
            last = recv_soon(&mut b).await;
        }
        b.commit(last.as_ref().unwrap()).await.unwrap();
        assert_eq!(bus.retained("t"), 40);
        assert_eq!(bus.lag("t", "g2"), 40);
        assert_eq!(bus.lag("t", "g1"), 0);
    }

    #[tokio::test]
    async fn idle_groups_keep_only_the_retention() {
        let bus = MemoryBus::with_retention(10);
        drop(bus.subscribe("t", "gone").await.unwrap());
        for i in 0..50u8 {
            bus.publish(out("t", b"k", &[i])).await.unwrap();
        }
        assert_eq!(bus.retained("t"), 10);
        let mut c = bus.subscribe("t", "gone").await.unwrap();
        assert_eq!(recv_soon(&mut c).await.unwrap().offset, 40);
    }

    #[tokio::test]
    async fn commit_from_another_topic_is_rejected() {
        let bus = MemoryBus::new();
        let mut c = bus.subscribe("t", "g").await.unwrap();
        bus.publish(out("u", b"k", b"x")).await.unwrap();
        let mut other = bus.subscribe("u", "g").await.unwrap();
        let m = recv_soon(&mut other).await.unwrap();
        assert!(matches!(c.commit(&m).await, Err(BusError::Other(_))));
    }
}
