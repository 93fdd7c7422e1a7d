//! Routing replies back to the node that asked. Each node holds one of a fixed set of reply
//! slots (a lease in the store, renewed while the node lives) and listens on two topics:
//! - its slot's topic `results.N`, named as `reply_to` in its requests, where floodgate's
//!   worker answers: no node sees another's replies there;
//! - `results` itself, where the seed's worker answers every request (it ignores
//!   `reply_to`). Every node must see every reply there, so each reads it in a group of its
//!   slot's (`floodgate-replies.slotN`) and drops the replies nobody here waits for.
//!
//! A crashed node's slot, with both its consumer groups, is simply reused by the next node
//! that claims it: at most `SLOTS` groups per topic, nothing piles up on the broker. A slot's
//! `results` group starts at the end of the log the first time (old replies answer nobody),
//! and commits what it read at most every `COMMIT_EVERY`, so the next holder of the slot
//! skips what was already read; what it reads again (replies that came while the slot was
//! free) is dropped after a parse that allocates nothing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use floodgate_bus::{BusError, Consumer, Message};
use floodgate_core::AppContext;
use floodgate_store::Swap;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Settings;

/// How many nodes can hold a reply slot at once.
pub const SLOTS: u32 = 64;
const SLOT_TTL: Duration = Duration::from_secs(20);
const RENEW_EVERY: Duration = Duration::from_secs(5);
const GROUP: &str = "floodgate-replies";
const DEFAULT_RESULTS: &str = "results";
/// How often the reply consumers commit what they read (see the module comment).
const COMMIT_EVERY: Duration = Duration::from_secs(1);
const SHARDS: usize = 16;

#[derive(Clone)]
pub struct Replies {
    inner: Arc<Inner>,
}

struct Inner {
    pending: [Mutex<HashMap<String, oneshot::Sender<String>>>; SHARDS],
    topic: RwLock<Option<Arc<str>>>,
    /// The listener task, for shutdown to wait until the slot is given back.
    listener: Mutex<Option<JoinHandle<()>>>,
}

/// Removes a pending entry when the request finishes, whatever the outcome.
pub struct Waiting {
    inner: Arc<Inner>,
    id: String,
    pub rx: oneshot::Receiver<String>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut m) = self.inner.shard(&self.id).lock() {
            m.remove(&self.id);
        }
    }
}

impl Inner {
    fn shard(&self, id: &str) -> &Mutex<HashMap<String, oneshot::Sender<String>>> {
        let h = id
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.pending[h % SHARDS]
    }

    /// Hands a reply to its waiting request; false when nobody waits (late or foreign).
    fn deliver(&self, reply: ReplyView<'_>) -> bool {
        let Some(code) = reply.result else {
            return false;
        };
        let id: &str = &reply.correlation_id;
        let tx = self.shard(id).lock().ok().and_then(|mut m| m.remove(id));
        tx.map(|tx| tx.send(code.into_owned()).is_ok())
            .unwrap_or(false)
    }
}

impl Replies {
    pub fn start(ctx: &AppContext, stop: CancellationToken) -> Replies {
        let inner = Arc::new(Inner {
            pending: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            topic: RwLock::new(None),
            listener: Mutex::new(None),
        });
        let task = tokio::spawn(listen(ctx.clone(), inner.clone(), stop));
        if let Ok(mut l) = inner.listener.lock() {
            *l = Some(task);
        }
        Replies { inner }
    }

    /// The listener task (once): it ends after `stop`, having given its reply slot back.
    pub fn take_listener(&self) -> Option<JoinHandle<()>> {
        self.inner.listener.lock().ok().and_then(|mut l| l.take())
    }

    /// The topic this node's replies arrive on, once the listener is running.
    pub fn topic(&self) -> Option<Arc<str>> {
        self.inner.topic.read().ok().and_then(|t| t.clone())
    }

    pub fn wait_for(&self, id: &str) -> Waiting {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.inner.shard(id).lock() {
            m.insert(id.to_string(), tx);
        }
        Waiting {
            inner: self.inner.clone(),
            id: id.to_string(),
            rx,
        }
    }
}

fn slot_key(ctx: &AppContext, slot: u32) -> String {
    format!(
        "giftcodes:reply-slot:{}:{slot}",
        ctx.config.settings::<Settings>().results_topic
    )
}

/// The topic floodgate's worker answers this slot's requests on.
pub(crate) fn slot_topic(results: &str, slot: u32) -> String {
    format!("{results}.{slot}")
}

/// The groups of a slot's two consumers: its topic's own, and its share of `results`.
fn slot_groups(results: &str, slot: u32) -> (String, String) {
    let topic = slot_topic(results, slot);
    let own = floodgate_bus::group_for(GROUP, &topic, DEFAULT_RESULTS);
    let shared = floodgate_bus::group_for(GROUP, results, DEFAULT_RESULTS);
    (own, format!("{shared}.slot{slot}"))
}

/// Claims a free slot; with the in-memory store this node is alone, so slot 0.
async fn claim(ctx: &AppContext) -> Option<u32> {
    let store = &ctx.backends.store;
    if !store.is_shared() {
        return Some(0);
    }
    let me = Bytes::from(ctx.config.node_id.clone());
    for slot in 0..SLOTS {
        let key = slot_key(ctx, slot);
        match store.set_nx(&key, me.clone(), Some(SLOT_TTL)).await {
            Ok(true) => return Some(slot),
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim a reply slot yet");
                return None;
            }
        }
    }
    tracing::error!("all {SLOTS} reply slots are taken");
    None
}

/// Renews our slot lease; false when it was lost (expired and taken, or gone).
async fn renew(ctx: &AppContext, slot: u32) -> bool {
    let store = &ctx.backends.store;
    if !store.is_shared() {
        return true;
    }
    let me = ctx.config.node_id.as_bytes();
    let key = slot_key(ctx, slot);
    // If the store is away, keep listening: the lease outlives short outages.
    store
        .compare_and_set(
            &key,
            Swap {
                expected: Some(me),
                new: Bytes::copy_from_slice(me),
                ttl: Some(SLOT_TTL),
            },
        )
        .await
        .unwrap_or(true)
}

/// Gives our slot back at shutdown, so a node restarted at once can take slot 0 again and
/// replies on its topic do not wait for the lease to expire. Get-then-delete is enough: the
/// lease was renewed less than `RENEW_EVERY` ago, so it cannot expire and be claimed by
/// another node in between.
async fn release(ctx: &AppContext, slot: u32) {
    let store = &ctx.backends.store;
    if !store.is_shared() {
        return;
    }
    let key = slot_key(ctx, slot);
    let ours = matches!(store.get(&key).await, Ok(Some(v)) if v == ctx.config.node_id.as_bytes());
    if ours {
        if let Err(e) = store.del(&key).await {
            tracing::warn!(error = %e, slot, "cannot give the reply slot back; it will expire");
        }
    }
}

async fn listen(ctx: AppContext, inner: Arc<Inner>, stop: CancellationToken) {
    let results = ctx.config.settings::<Settings>().results_topic.clone();
    while !stop.is_cancelled() {
        let Some(slot) = claim(&ctx).await else {
            if pause(&stop, Duration::from_secs(1)).await {
                return;
            }
            continue;
        };
        let topic = slot_topic(&results, slot);
        let (own, shared) = slot_groups(&results, slot);
        let bus = &ctx.backends.bus;
        let consumers = match bus.subscribe(&topic, &own).await {
            Ok(mine) => match bus.subscribe_from_end(&results, &shared).await {
                Ok(all) => Ok([mine, all]),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let consumers = match consumers {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, %topic, "cannot subscribe to replies yet");
                release(&ctx, slot).await;
                if pause(&stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if let Ok(mut t) = inner.topic.write() {
            *t = Some(Arc::from(topic.as_str()));
        }
        tracing::info!(%topic, %results, slot, "listening for gift-code replies");
        serve_slot(&ctx, &inner, consumers, slot, &stop).await;
        if let Ok(mut t) = inner.topic.write() {
            *t = None;
        }
        if stop.is_cancelled() {
            release(&ctx, slot).await;
        }
    }
}

/// Receives replies on both topics until the slot is lost or we stop.
async fn serve_slot(
    ctx: &AppContext,
    inner: &Inner,
    consumers: [Box<dyn Consumer>; 2],
    slot: u32,
    stop: &CancellationToken,
) {
    let [mut mine, mut all] = consumers;
    let (mut mine_read, mut all_read) = (Unacked::default(), Unacked::default());
    let mut renew_tick = tokio::time::interval(RENEW_EVERY);
    renew_tick.tick().await;
    let mut commit_tick = tokio::time::interval(COMMIT_EVERY);
    loop {
        let (msg, read) = tokio::select! {
            _ = stop.cancelled() => break,
            _ = renew_tick.tick() => {
                if !renew(ctx, slot).await {
                    tracing::warn!(slot, "reply slot lost; claiming another");
                    break;
                }
                continue;
            }
            _ = commit_tick.tick() => {
                mine_read.commit(&mut mine).await;
                all_read.commit(&mut all).await;
                continue;
            }
            msg = mine.recv() => (msg, &mut mine_read),
            msg = all.recv() => (msg, &mut all_read),
        };
        match msg {
            Ok(m) => {
                handle(inner, &m);
                read.note(m);
            }
            Err(BusError::Closed) => break,
            Err(e) => {
                tracing::debug!(error = %e, "reply consumer error; retrying");
                if pause(stop, Duration::from_millis(200)).await {
                    break;
                }
            }
        }
    }
    for (read, consumer) in [(&mut mine_read, &mut mine), (&mut all_read, &mut all)] {
        read.commit(consumer).await;
        let _ = consumer.close().await;
    }
}

/// The last message read per partition and not committed yet.
#[derive(Default)]
struct Unacked {
    last: HashMap<i32, Message>,
}

impl Unacked {
    fn note(&mut self, m: Message) {
        self.last.insert(m.partition, m);
    }

    async fn commit(&mut self, consumer: &mut Box<dyn Consumer>) {
        for (_, m) in self.last.drain() {
            if let Err(e) = consumer.commit(&m).await {
                tracing::debug!(error = %e, "reply commit failed; a few replies will be read again");
            }
        }
    }
}

/// A reply as read off the bus, borrowing from the message: a reply for another node is
/// dropped without allocating.
#[derive(serde::Deserialize)]
struct ReplyView<'a> {
    #[serde(borrow)]
    correlation_id: Cow<'a, str>,
    #[serde(borrow, default)]
    result: Option<Cow<'a, str>>,
}

fn handle(inner: &Inner, m: &Message) {
    match serde_json::from_slice::<ReplyView<'_>>(&m.payload) {
        Ok(reply) => {
            if !inner.deliver(reply) {
                metrics::counter!("giftcode_replies_unmatched_total").increment(1);
            }
        }
        Err(_) => metrics::counter!("giftcode_replies_malformed_total").increment(1),
    }
}

/// Sleeps unless stopped first; true when stopped.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
