//! The command applier: consumes the todo topic in group `floodgate-todos`, applies what
//! arrived (up to BATCH_MAX, or whatever came within BATCH_WINDOW) in one transaction,
//! commits offsets only after the database commit, then bumps the list version.
//! Poison messages go to `{topic}.dlq` with a `reason` header and are committed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use floodgate_bus::{BusError, Consumer, Message, Outgoing, SharedBus};
use floodgate_core::retry::Backoff;
use floodgate_core::telemetry::trace;
use floodgate_core::AppContext;
use floodgate_db::{timed, Db, DbError};
use tokio_util::sync::CancellationToken;

use crate::apply::{apply_batch, prune_applied, Incoming, Outcome};
use crate::keys::Keys;
use crate::model::{format_stamp, Command};
use crate::stamps::Stamps;
use crate::version::Version;

pub const GROUP: &str = "floodgate-todos";

/// The consumer group for `topic`: `floodgate-todos` for the default topic. Another topic
/// gets its own group, so deployments (or tests) sharing a broker never join one group
/// across topics and stall each other's rebalances.
pub fn group_for(topic: &str) -> String {
    floodgate_bus::group_for(GROUP, topic, "todo-commands")
}
const BATCH_MAX: usize = 500;
const BATCH_WINDOW: Duration = Duration::from_millis(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Dedup records outlive any broker retention we expect (Kafka's default is 7 days).
const DEDUP_KEEP: Duration = Duration::from_secs(8 * 86_400);
const PRUNE_EVERY: Duration = Duration::from_secs(600);

struct Worker {
    bus: SharedBus,
    db: Db,
    version: Version,
    topic: String,
    dlq: String,
    /// With the in-process bus, applied commands also leave the outbox.
    clear_outbox: bool,
    /// The table's stamp type, asked once (after migrations created the table).
    stamps: tokio::sync::OnceCell<Stamps>,
    stop: CancellationToken,
}

/// Runs until `stop` is cancelled; the batch in progress then is finished and committed.
pub async fn run(ctx: AppContext, stop: CancellationToken) {
    let b = &ctx.backends;
    let topic = ctx.config.settings::<crate::Settings>().topic.clone();
    let w = Worker {
        bus: b.bus.clone(),
        db: b.db.clone(),
        version: Version::new(&b.store, &b.db, &Keys::for_topic(&topic)),
        dlq: format!("{topic}.dlq"),
        clear_outbox: b.bus.in_process(),
        stamps: tokio::sync::OnceCell::new(),
        topic,
        stop,
    };
    let Some(mut consumer) = w.subscribe().await else {
        return;
    };
    tracing::info!(topic = %w.topic, group = %group_for(&w.topic), "todo worker started");
    // A previous run may have committed a batch and died before bumping the version.
    let mut bump_pending = true;
    // Pruning waits a while: it must not hold up the first batch (or a database outage).
    let mut last_prune = Instant::now();
    loop {
        if bump_pending {
            bump_pending = !w.bump().await;
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            w.prune().await;
            last_prune = Instant::now();
        }
        let Some(batch) = w.collect(consumer.as_mut()).await else {
            break;
        };
        if !w.process(consumer.as_mut(), &batch).await {
            break;
        }
        bump_pending = !w.bump().await;
    }
    if bump_pending {
        w.bump().await;
    }
    if let Err(e) = consumer.close().await {
        tracing::warn!(error = %e, "todo consumer close failed");
    }
    tracing::info!("todo worker stopped");
}

impl Worker {
    async fn subscribe(&self) -> Option<Box<dyn Consumer>> {
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        loop {
            match self
                .bus
                .subscribe(&self.topic, &group_for(&self.topic))
                .await
            {
                Ok(c) => return Some(c),
                Err(e) => tracing::warn!(error = %e, "todo worker cannot subscribe; retrying"),
            }
            if !backoff.wait(&self.stop).await {
                return None;
            }
        }
    }

    /// The next batch: waits for one message, then takes what else arrives within the
    /// window. None when stopped or the bus closed.
    async fn collect(&self, consumer: &mut dyn Consumer) -> Option<Vec<Message>> {
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        let first = loop {
            let r = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return None,
                r = consumer.recv() => r,
            };
            match r {
                Ok(m) => break m,
                Err(BusError::Closed) => return None,
                Err(e) => {
                    tracing::debug!(error = %e, "todo consumer recv failed; retrying");
                    if !backoff.wait(&self.stop).await {
                        return None;
                    }
                }
            }
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < BATCH_MAX {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m),
                _ => break,
            }
        }
        Some(batch)
    }

    /// Dead-letters the poison, applies the rest, commits offsets. False when stopped
    /// before the batch could be applied (offsets stay uncommitted: it is redelivered).
    async fn process(&self, consumer: &mut dyn Consumer, batch: &[Message]) -> bool {
        metrics::histogram!("todos_batch_size").record(batch.len() as f64);
        let mut good = Vec::with_capacity(batch.len());
        for m in batch {
            match parse(m) {
                Ok(item) => good.push(item),
                Err(reason) => {
                    if !self.dead_letter(m, &reason).await {
                        return false;
                    }
                }
            }
        }
        if !good.is_empty() && !self.apply_with_retry(&good).await {
            return false;
        }
        commit_offsets(consumer, batch).await;
        true
    }

    /// Applies `good`, retrying while the database is unavailable. A batch the database
    /// refuses is split so only the commands it refuses are dead-lettered.
    async fn apply_with_retry(&self, good: &[Incoming]) -> bool {
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        loop {
            let applied = self.apply(good);
            match timed("todos.apply_batch", applied).await {
                Ok(outcomes) => {
                    record(good, &outcomes);
                    return true;
                }
                Err(DbError::Query(e)) => {
                    tracing::warn!(error = %e, size = good.len(), "todo batch refused; applying one by one");
                    match self.apply_one_by_one(good).await {
                        Some(true) => return true,
                        Some(false) => {}
                        None => return false,
                    }
                }
                Err(e) => tracing::warn!(error = %e, "todo batch not applied; retrying"),
            }
            if !backoff.wait(&self.stop).await {
                return false;
            }
        }
    }

    /// Some(true) when every command was applied or dead-lettered; Some(false) when the
    /// database became unavailable (retry the whole batch: applied ones are deduplicated);
    /// None when stopped.
    async fn apply_one_by_one(&self, good: &[Incoming]) -> Option<bool> {
        for item in good {
            let one = std::slice::from_ref(item);
            let mut result = self.apply(one).await;
            if matches!(result, Err(DbError::Query(_))) {
                // A conflict with a concurrent applier resolves on a second try.
                result = self.apply(one).await;
            }
            match result {
                Ok(outcomes) => record(one, &outcomes),
                Err(DbError::Query(e)) => {
                    let reason = format!("cannot apply: {e}");
                    let payload = serde_json::to_vec(&item.cmd).unwrap_or_default();
                    if !self
                        .publish_dlq(item.cmd.id.as_bytes(), &payload, &reason, &[])
                        .await
                    {
                        return None;
                    }
                }
                Err(_) => return Some(false),
            }
        }
        Some(true)
    }

    async fn apply(&self, batch: &[Incoming]) -> Result<Vec<Outcome>, DbError> {
        let stamps = *self
            .stamps
            .get_or_try_init(|| Stamps::detect(&self.db))
            .await?;
        apply_batch(&self.db, stamps, batch, self.clear_outbox).await
    }

    async fn dead_letter(&self, m: &Message, reason: &str) -> bool {
        let pos = [
            ("source-topic", m.topic.as_bytes().to_vec()),
            ("source-partition", m.partition.to_string().into_bytes()),
            ("source-offset", m.offset.to_string().into_bytes()),
        ];
        let key = m.key.as_deref().unwrap_or_default();
        self.publish_dlq(key, &m.payload, reason, &pos).await
    }

    /// Publishes to the dead-letter topic, retrying while the bus is down; false if stopped.
    async fn publish_dlq(
        &self,
        key: &[u8],
        payload: &[u8],
        reason: &str,
        extra: &[(&str, Vec<u8>)],
    ) -> bool {
        tracing::warn!(reason, topic = %self.dlq, "todo command dead-lettered");
        let mut headers: Vec<(&str, &[u8])> = vec![("reason", reason.as_bytes())];
        headers.extend(extra.iter().map(|(k, v)| (*k, v.as_slice())));
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        loop {
            let msg = Outgoing {
                topic: &self.dlq,
                key: Some(key),
                payload,
                headers: &headers,
            };
            match self.bus.publish(msg).await {
                Ok(()) => {
                    metrics::counter!("todos_dead_letters_total").increment(1);
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, "dead-letter publish failed; retrying"),
            }
            if !backoff.wait(&self.stop).await {
                return false;
            }
        }
    }

    /// True when the version was bumped (readers will refill).
    async fn bump(&self) -> bool {
        match self.version.bump().await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "todos version not bumped; retrying after the next batch");
                false
            }
        }
    }

    async fn prune(&self) {
        let keep = time::Duration::try_from(DEDUP_KEEP).unwrap_or(time::Duration::WEEK);
        let cutoff = format_stamp(time::OffsetDateTime::now_utc() - keep);
        match prune_applied(&self.db, &cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "old todo command ids pruned"),
            Err(e) => tracing::debug!(error = %e, "todo command ids not pruned"),
        }
    }
}

/// A message as a command, or why it is poison.
fn parse(m: &Message) -> Result<Incoming, String> {
    let cmd: Command =
        serde_json::from_slice(&m.payload).map_err(|e| format!("not a todo command: {e}"))?;
    cmd.validate()?;
    // The seed's producers send no command id; the message position identifies a
    // redelivery of the same message just as well.
    let command_id = match &cmd.command_id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => format!("{}:{}:{}", m.topic, m.partition, m.offset),
    };
    // Which command came from where: lets a write that never lands be traced in the logs.
    tracing::debug!(id = %cmd.id, %command_id, partition = m.partition, offset = m.offset, "todo command received");
    let span = trace::consumer_span("todos.apply", &m.topic, m.header(trace::TRACEPARENT));
    Ok(Incoming {
        cmd,
        command_id,
        span,
    })
}

fn record(items: &[Incoming], outcomes: &[Outcome]) {
    for (item, outcome) in items.iter().zip(outcomes) {
        let (action, result) = (item.cmd.action.as_str(), outcome.as_str());
        metrics::counter!("todos_commands_applied_total", "action" => action, "result" => result)
            .increment(1);
        if matches!(
            outcome,
            Outcome::Missing | Outcome::Forbidden | Outcome::Conflict
        ) {
            tracing::info!(action, result, id = %item.cmd.id, user = %item.cmd.user_id, "todo command skipped");
        }
    }
}

/// Commits the last message of each partition in the batch.
async fn commit_offsets(consumer: &mut dyn Consumer, batch: &[Message]) {
    let mut last: HashMap<(&str, i32), &Message> = HashMap::new();
    for m in batch {
        let e = last.entry((m.topic.as_str(), m.partition)).or_insert(m);
        if m.offset > e.offset {
            *e = m;
        }
    }
    for m in last.values() {
        if let Err(e) = consumer.commit(m).await {
            // Redelivery after this is harmless: the commands are deduplicated.
            tracing::warn!(error = %e, "todo offset commit failed");
        }
    }
}
