//! The Redis connection: created lazily and replaced in the background, so the server starts
//! while Redis is down, every call fails fast (`Unavailable`) during an outage, and the store
//! recovers by itself when Redis comes back. One server or a Redis Cluster ([`Link`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::{Client, ErrorKind, RedisError, RedisResult};
use parking_lot::RwLock;

use super::link::{Dialer, Link};

use crate::{StoreError, StoreResult};

/// One TCP connect attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Hard ceiling on a whole call (waiting for an in-flight reconnect, then the reply).
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between background connection attempts while Redis is unreachable.
const RECONNECT_EVERY: Duration = Duration::from_millis(250);
/// Tries per cluster call: a redirection costs one, a node being replaced a few.
const CLUSTER_RETRIES: u32 = 4;
/// Consecutive calls failing for connection reasons after which the connection is rebuilt.
/// The manager only reconnects by itself on I/O errors; this also covers replies that time
/// out on a half-open socket or a server stuck answering LOADING.
const RESET_AFTER_FAILURES: u32 = 3;

/// Shared handle; clones share one connection.
#[derive(Clone)]
pub(crate) struct Conn {
    inner: Arc<Inner>,
}

struct Inner {
    dialer: Dialer,
    /// The live connection and its generation (so a late failure of a replaced connection
    /// does not count against the new one).
    current: RwLock<Option<(u64, Link)>>,
    generation: AtomicU64,
    failures: AtomicU32,
    /// True while a background task is connecting; at most one runs.
    connecting: AtomicBool,
}

impl Conn {
    /// Validates `url` and tries one quick connect; when Redis is down, still succeeds and
    /// keeps connecting in the background.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let dialer = dialer(url)?;
        let conn = Self {
            inner: Arc::new(Inner {
                dialer,
                current: RwLock::new(None),
                generation: AtomicU64::new(0),
                failures: AtomicU32::new(0),
                connecting: AtomicBool::new(true),
            }),
        };
        match conn.inner.connect_once().await {
            Ok(manager) => {
                conn.inner.install(manager);
                conn.inner.connecting.store(false, Ordering::Release);
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis not reachable at start-up; retrying in the background");
                conn.inner.connecting.store(false, Ordering::Release);
                conn.inner.spawn_connector();
            }
        }
        Ok(conn)
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.dialer, Dialer::Cluster(_))
    }

    /// Runs one request on the current connection, bounded by [`CALL_TIMEOUT`]. `key` names
    /// the key in `WrongType` errors.
    pub async fn exec<T, F, Fut>(&self, key: &str, op: F) -> StoreResult<T>
    where
        F: FnOnce(Link) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let current = self.inner.current.read().clone();
        let Some((generation, manager)) = current else {
            self.inner.spawn_connector();
            return Err(StoreError::Unavailable("not connected to redis".into()));
        };
        let (result, connection_trouble) =
            match tokio::time::timeout(CALL_TIMEOUT, op(manager)).await {
                Ok(Ok(v)) => (Ok(v), false),
                Ok(Err(e)) => {
                    let trouble = is_connection_trouble(&e);
                    (Err(map_error(key, e)), trouble)
                }
                Err(_) => (
                    Err(StoreError::Unavailable("redis call timed out".into())),
                    true,
                ),
            };
        if connection_trouble {
            self.inner.failed(generation);
        } else {
            self.inner.failures.store(0, Ordering::Relaxed);
        }
        result
    }
}

impl Inner {
    async fn connect_once(&self) -> RedisResult<Link> {
        let attempt = async {
            match &self.dialer {
                Dialer::Single(client) => {
                    // No retries inside the manager: its backoff starts at one second, and
                    // callers would wait on it. Recovery comes from the manager's own
                    // reconnect on the next call plus the background task here.
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(CONNECT_TIMEOUT)
                        .set_response_timeout(RESPONSE_TIMEOUT)
                        .set_number_of_retries(0);
                    ConnectionManager::new_with_config(client.clone(), config)
                        .await
                        .map(Link::Single)
                }
                Dialer::Cluster(client) => client.get_async_connection().await.map(Link::Cluster),
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            ))),
        }
    }

    fn install(&self, manager: Link) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.failures.store(0, Ordering::Relaxed);
        *self.current.write() = Some((generation, manager));
    }

    /// Counts an unavailable call; after a few in a row, drops the connection and rebuilds it.
    fn failed(self: &Arc<Self>, generation: u64) {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n < RESET_AFTER_FAILURES {
            return;
        }
        let dropped = {
            let mut current = self.current.write();
            match &*current {
                Some((g, _)) if *g == generation => current.take().is_some(),
                _ => false,
            }
        };
        if dropped {
            tracing::warn!("redis connection failing; reconnecting");
            self.spawn_connector();
        }
    }

    /// Starts the background connect loop unless one is already running. It holds only a
    /// weak reference between attempts, so it ends when the store is dropped.
    fn spawn_connector(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut attempts: u64 = 0;
            loop {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                match inner.connect_once().await {
                    Ok(manager) => {
                        inner.install(manager);
                        inner.connecting.store(false, Ordering::Release);
                        tracing::info!(attempts, "redis connection established");
                        return;
                    }
                    Err(e) => {
                        attempts += 1;
                        tracing::debug!(error = %e, attempts, "redis connect failed");
                    }
                }
                drop(inner);
                tokio::time::sleep(RECONNECT_EVERY).await;
            }
        });
    }
}

/// Errors a fresh connection may cure (as opposed to replies about the data or a script).
fn is_connection_trouble(e: &RedisError) -> bool {
    e.is_io_error()
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::MasterDown
                | ErrorKind::ClusterDown
                | ErrorKind::ReadOnly
                | ErrorKind::ParseError
                | ErrorKind::AuthenticationFailed
        )
}

/// Maps a Redis error to the store's vocabulary. Anything not clearly about the value is
/// treated as the backend being unavailable (retryable, 503).
pub(super) fn map_error(key: &str, e: RedisError) -> StoreError {
    let text = e.to_string();
    if e.kind() == ErrorKind::ResponseError && text.contains("would overflow") {
        return StoreError::Overflow;
    }
    if e.code() == Some("WRONGTYPE") || text.contains("not an integer") {
        return StoreError::WrongType(key.to_string());
    }
    StoreError::Unavailable(Box::new(e))
}

/// The client for `url`, one server or a cluster; nothing is dialled yet, so this also
/// checks a URL at start-up ([`crate::check_url`]).
pub(super) fn dialer(url: &str) -> StoreResult<Dialer> {
    Dialer::parse(
        url,
        |seeds| {
            ClusterClient::builder(seeds)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                // Redirections (MOVED/ASK) and a promotion in progress are retried inside
                // the client; the whole call stays bounded by CALL_TIMEOUT.
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(10)
                .max_retry_wait(400)
                .build()
        },
        |u| Client::open(u),
    )
    .map_err(|e| StoreError::Unavailable(Box::new(InvalidUrl(e))))
}

/// A URL the Redis client refused: the cause of `Unavailable` from [`Conn::open`].
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL: {0}")]
struct InvalidUrl(#[source] RedisError);
