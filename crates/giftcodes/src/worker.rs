//! The gift-code worker: takes requests from `tasks`, answers each on the topic the asking
//! node named (or `results`, as the seed's worker does), and commits only after the replies
//! are acknowledged, so a worker killed mid-batch leaves its requests to be answered again.

use std::collections::HashMap;
use std::time::Duration;

use floodgate_bus::{BusError, Consumer, Message, Outgoing};
use floodgate_core::retry::Backoff;
use floodgate_core::telemetry::trace;
use floodgate_core::AppContext;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt as _, StreamExt as _};
use rand::RngCore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::model::{Reply, Request, ACTION};
use crate::Settings;

const GROUP: &str = "floodgate-giftcodes";
const MAX_BATCH: usize = 256;
/// Batches answered at once (see `workers`).
const MAX_ANSWERING: usize = 8;

/// `GIFT-` and 128 random bits in hex: unique across nodes and restarts in practice.
pub fn new_gift_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut s = String::with_capacity(5 + 32);
    s.push_str("GIFT-");
    for b in bytes {
        s.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
        s.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
    }
    s
}

pub async fn workers(ctx: AppContext, stop: CancellationToken) {
    crate::short_retention(&ctx);
    let bus = &ctx.backends.bus;
    let topic = ctx.config.settings::<Settings>().tasks_topic.clone();
    let group = floodgate_bus::group_for(GROUP, &topic, "tasks");
    let mut consumer = loop {
        match bus.subscribe(&topic, &group).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "gift-code worker cannot subscribe yet");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    // Batches whose replies await their acknowledgements, oldest first: the next batch is
    // answered meanwhile (its replies join the producer's next request instead of waiting
    // for the previous ones' acks), and each batch is committed only once it and every
    // batch before it are answered.
    let mut answering: FuturesOrdered<BoxFuture<'static, Vec<Message>>> = FuturesOrdered::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            Some(batch) = answering.next(), if !answering.is_empty() => {
                commit_last_per_partition(&mut consumer, &batch).await;
            }
            first = consumer.recv(), if answering.len() < MAX_ANSWERING => {
                let first = match first {
                    Ok(m) => m,
                    Err(BusError::Closed) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "gift-code worker receive failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let batch = drain(&mut consumer, first);
                let (ctx, stop) = (ctx.clone(), stop.clone());
                answering.push_back(Box::pin(async move {
                    answer(&ctx, &batch, &stop).await;
                    batch
                }));
            }
        }
    }
    // Replies under way are acknowledged, or given up now that we stop: commit what was
    // answered, in order.
    while let Some(batch) = answering.next().await {
        commit_last_per_partition(&mut consumer, &batch).await;
    }
    let _ = consumer.close().await;
}

/// Takes what is already waiting, up to a batch, without waiting for more (`recv` is
/// cancel-safe: a poll that finds nothing loses nothing).
fn drain(consumer: &mut Box<dyn Consumer>, first: Message) -> Vec<Message> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match consumer.recv().now_or_never() {
            Some(Ok(m)) => batch.push(m),
            _ => break,
        }
    }
    batch
}

/// Publishes every reply concurrently, each in the trace of the request it answers.
async fn answer(ctx: &AppContext, batch: &[Message], stop: &CancellationToken) {
    let sends = batch.iter().filter_map(|m| {
        let span = trace::consumer_span("giftcodes.issue", &m.topic, m.header(trace::TRACEPARENT));
        let (topic, id, payload) = reply_for(ctx, m)?;
        Some(send_reply(ctx, topic, id, payload, stop).instrument(span))
    });
    futures::future::join_all(sends).await;
}

/// Publishes one reply; retries until acknowledged or told to stop.
async fn send_reply(
    ctx: &AppContext,
    topic: String,
    id: String,
    payload: Vec<u8>,
    stop: &CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        let out = Outgoing {
            topic: &topic,
            key: Some(id.as_bytes()),
            payload: &payload,
            headers: &[],
        };
        match ctx.backends.bus.publish(out).await {
            Ok(()) => {
                metrics::counter!("giftcode_codes_issued_total").increment(1);
                return;
            }
            Err(e) if !stop.is_cancelled() => {
                tracing::warn!(error = %e, "reply publish failed; retrying");
                backoff.sleep().await;
            }
            Err(_) => return,
        }
    }
}

/// The reply (topic, correlation id, bytes) for one request; None for a malformed one.
fn reply_for(ctx: &AppContext, m: &Message) -> Option<(String, String, Vec<u8>)> {
    let req: Request = match serde_json::from_slice(&m.payload) {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("giftcode_requests_malformed_total").increment(1);
            return None;
        }
    };
    if req.action != ACTION {
        metrics::counter!("giftcode_requests_malformed_total").increment(1);
        return None;
    }
    let reply = Reply {
        correlation_id: req.correlation_id,
        result: Some(new_gift_code()),
    };
    let payload = serde_json::to_vec(&reply).ok()?;
    let topic = req
        .reply_to
        .unwrap_or_else(|| ctx.config.settings::<Settings>().results_topic.clone());
    Some((topic, reply.correlation_id, payload))
}

async fn commit_last_per_partition(consumer: &mut Box<dyn Consumer>, batch: &[Message]) {
    let mut last: HashMap<i32, &Message> = HashMap::new();
    for m in batch {
        last.insert(m.partition, m);
    }
    for m in last.values() {
        if let Err(e) = consumer.commit(m).await {
            tracing::debug!(error = %e, "commit failed; the batch may be answered again");
        }
    }
}
