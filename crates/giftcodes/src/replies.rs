//! Routing replies back to the node that asked. Each node holds one of a fixed set of reply
//! slots (a lease in the store, renewed while the node lives) and listens only on that slot's
//! topic: `results` for slot 0 (where the seed's own worker replies), `results.N` otherwise.
//! So no node sees another's replies, and a crashed node's slot and consumer group are simply
//! reused by the next node that claims it: nothing piles up on the broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use floodgate_bus::{BusError, Consumer, Message};
use floodgate_core::AppContext;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::wire::Reply;

/// How many nodes can hold a reply slot at once.
pub const SLOTS: u32 = 64;
const SLOT_TTL: Duration = Duration::from_secs(20);
const RENEW_EVERY: Duration = Duration::from_secs(5);
const GROUP: &str = "floodgate-replies";
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
    fn deliver(&self, reply: Reply) -> bool {
        let Some(code) = reply.result else {
            return false;
        };
        let tx = self
            .shard(&reply.correlation_id)
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&reply.correlation_id));
        tx.map(|tx| tx.send(code).is_ok()).unwrap_or(false)
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
    format!("giftcodes:reply-slot:{}:{slot}", ctx.config.results_topic)
}

fn slot_topic(results: &str, slot: u32) -> String {
    if slot == 0 {
        results.to_string()
    } else {
        format!("{results}.{slot}")
    }
}

/// Claims a free slot; with the in-memory store this node is alone, so slot 0.
async fn claim(ctx: &AppContext) -> Option<u32> {
    let store = &ctx.backends.store;
    if store.kind() == "memory" {
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
    if store.kind() == "memory" {
        return true;
    }
    let me = ctx.config.node_id.as_bytes();
    let key = slot_key(ctx, slot);
    // If the store is away, keep listening: the lease outlives short outages.
    store
        .compare_and_set(&key, Some(me), Bytes::copy_from_slice(me), Some(SLOT_TTL))
        .await
        .unwrap_or(true)
}

/// Gives our slot back at shutdown, so a node restarted at once can take slot 0 again and
/// replies on its topic do not wait for the lease to expire. Get-then-delete is enough: the
/// lease was renewed less than `RENEW_EVERY` ago, so it cannot expire and be claimed by
/// another node in between.
async fn release(ctx: &AppContext, slot: u32) {
    let store = &ctx.backends.store;
    if store.kind() == "memory" {
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
    while !stop.is_cancelled() {
        let Some(slot) = claim(&ctx).await else {
            if pause(&stop, Duration::from_secs(1)).await {
                return;
            }
            continue;
        };
        let topic = slot_topic(&ctx.config.results_topic, slot);
        // A group per slot topic: a node killed with -9 then stalls only its own slot's
        // group until its session expires, never the other nodes' replies.
        let group = floodgate_bus::group_for(GROUP, &topic, &ctx.config.results_topic);
        let consumer = match ctx.backends.bus.subscribe(&topic, &group).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, %topic, "cannot subscribe to replies yet");
                if pause(&stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if let Ok(mut t) = inner.topic.write() {
            *t = Some(Arc::from(topic.as_str()));
        }
        tracing::info!(%topic, slot, "listening for gift-code replies");
        serve_slot(&ctx, &inner, consumer, slot, &stop).await;
        if let Ok(mut t) = inner.topic.write() {
            *t = None;
        }
        if stop.is_cancelled() {
            release(&ctx, slot).await;
        }
    }
}

/// Receives replies until the slot is lost or we stop.
async fn serve_slot(
    ctx: &AppContext,
    inner: &Inner,
    mut consumer: Box<dyn Consumer>,
    slot: u32,
    stop: &CancellationToken,
) {
    let mut renew_tick = tokio::time::interval(RENEW_EVERY);
    renew_tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = renew_tick.tick() => {
                if !renew(ctx, slot).await {
                    tracing::warn!(slot, "reply slot lost; claiming another");
                    break;
                }
            }
            msg = consumer.recv() => match msg {
                Ok(m) => handle(inner, &mut consumer, m).await,
                Err(BusError::Closed) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "reply consumer error; retrying");
                    if pause(stop, Duration::from_millis(200)).await {
                        break;
                    }
                }
            },
        }
    }
    let _ = consumer.close().await;
}

async fn handle(inner: &Inner, consumer: &mut Box<dyn Consumer>, m: Message) {
    match serde_json::from_slice::<Reply>(&m.payload) {
        Ok(reply) => {
            if !inner.deliver(reply) {
                metrics::counter!("giftcode_replies_unmatched_total").increment(1);
            }
        }
        Err(_) => metrics::counter!("giftcode_replies_malformed_total").increment(1),
    }
    let _ = consumer.commit(&m).await;
}

/// Sleeps unless stopped first; true when stopped.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
