//! Embedded durability. The in-process bus forgets everything on `kill -9`, so with it a
//! command is first committed to the `todo_outbox` table (several concurrent writers share
//! one transaction: group commit) and only then answered 202 and handed to the bus. The
//! worker deletes outbox rows in the same transaction that applies them; whatever is still
//! there when a node starts is handed to the bus again, oldest first, before any new
//! command (so per-todo order survives a crash). Redelivery is harmless: commands are
//! deduplicated by `command_id`.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use floodgate_bus::{Outgoing, SharedBus};
use floodgate_core::retry::Backoff;
use floodgate_core::telemetry::trace;
use floodgate_db::{Db, DbError, DbResult};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use crate::repo::begin_write;

/// Commands committed together at most; more waiting writers form the next group.
const GROUP_MAX: usize = 256;
/// Writers waiting for a group commit at most; more wait to enqueue.
const QUEUE: usize = 4096;
/// A writer gives up (503) when its command is not committed within this.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One command on its way to the outbox.
pub struct Entry {
    pub command_id: String,
    pub key: String,
    pub payload: Vec<u8>,
    /// W3C trace context of the request; not stored, so a replayed command starts a new trace.
    pub traceparent: Option<String>,
}

struct Pending {
    entry: Entry,
    /// The group's outcome, shared by every writer in it.
    done: oneshot::Sender<Result<(), Arc<DbError>>>,
}

/// Why a command did not reach the outbox (each a 503 for the writer).
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox committer stopped")]
    Stopped,
    /// The group's transaction failed.
    #[error("{0}")]
    Commit(#[source] Arc<DbError>),
    #[error("outbox commit timed out")]
    TimedOut,
}

#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Pending>,
    topic: Arc<str>,
}

impl Outbox {
    /// Starts the committer task, which first replays rows left by a previous run once
    /// `migrated` says the table exists.
    pub fn start(db: Db, bus: SharedBus, topic: String, migrated: Arc<AtomicBool>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let name = topic.as_str().into();
        tokio::spawn(committer(db, bus, topic, migrated, rx));
        Outbox { tx, topic: name }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Returns once the command is committed to the database.
    pub async fn submit(&self, entry: Entry) -> Result<(), OutboxError> {
        let (done, wait) = oneshot::channel();
        let work = async {
            self.tx
                .send(Pending { entry, done })
                .await
                .map_err(|_| OutboxError::Stopped)?;
            wait.await
                .map_err(|_| OutboxError::Stopped)?
                .map_err(OutboxError::Commit)
        };
        match tokio::time::timeout(SUBMIT_TIMEOUT, work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(OutboxError::TimedOut),
        }
    }
}

/// Ordering key for replay: microseconds since the epoch, strictly increasing per process.
fn next_seq() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

async fn committer(
    db: Db,
    bus: SharedBus,
    topic: String,
    migrated: Arc<AtomicBool>,
    mut rx: mpsc::Receiver<Pending>,
) {
    while !migrated.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        match replay(&db, &bus, &topic).await {
            Ok(0) => break,
            Ok(n) => {
                tracing::info!(commands = n, "todo commands replayed from the outbox");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox replay failed; retrying");
                backoff.sleep().await;
            }
        }
    }
    let mut group = Vec::with_capacity(GROUP_MAX);
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let result = insert(&db, &group).await.map_err(Arc::new);
        for p in group.drain(..) {
            let answer = match &result {
                Ok(()) => {
                    publish(&bus, &topic, &p.entry).await;
                    Ok(())
                }
                Err(e) => Err(e.clone()),
            };
            let _ = p.done.send(answer);
        }
    }
}

async fn insert(db: &Db, group: &[Pending]) -> DbResult<()> {
    let mut tx = begin_write(db).await?;
    for p in group {
        // A retry with the same Idempotency-Key carries the same command id: one row does.
        sqlx::query(
            "INSERT INTO todo_outbox (command_id, seq, todo_id, payload) VALUES ($1, $2, $3, $4)
             ON CONFLICT (command_id) DO NOTHING",
        )
        .bind(&p.entry.command_id)
        .bind(next_seq())
        .bind(&p.entry.key)
        .bind(String::from_utf8_lossy(&p.entry.payload).into_owned())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Hands a committed command to the bus. A failure loses nothing: the row stays in the
/// outbox and is replayed when the node starts again.
async fn publish(bus: &SharedBus, topic: &str, e: &Entry) {
    let tp = e
        .traceparent
        .as_deref()
        .map(|t| (trace::TRACEPARENT, t.as_bytes()));
    let msg = Outgoing {
        topic,
        key: Some(e.key.as_bytes()),
        payload: &e.payload,
        headers: tp.as_slice(),
    };
    if let Err(err) = bus.publish(msg).await {
        tracing::warn!(error = %err, command_id = %e.command_id, "committed todo command not handed to the bus; it is replayed at next start");
    }
}

/// Publishes every row left in the outbox, oldest first; returns how many.
async fn replay(db: &Db, bus: &SharedBus, topic: &str) -> DbResult<usize> {
    let rows = sqlx::query("SELECT command_id, todo_id, payload FROM todo_outbox ORDER BY seq")
        .fetch_all(db.pool())
        .await?;
    for row in &rows {
        let entry = Entry {
            command_id: row.try_get("command_id")?,
            key: row.try_get("todo_id")?,
            payload: row.try_get::<String, _>("payload")?.into_bytes(),
            traceparent: None,
        };
        publish(bus, topic, &entry).await;
    }
    Ok(rows.len())
}
