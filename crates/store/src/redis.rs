//! Redis-backed store. Every compound step is one Lua script (EVALSHA, EVAL on a cold
//! cache), so it is atomic and one round trip; clocks come from Redis `TIME` so all nodes
//! agree. The same code serves one server or a Redis Cluster (`redis+cluster://` URLs). This
//! file holds the store, its [`Kv`] core and the helpers every capability's Redis half
//! shares (`idempotency/redis.rs`, ...).

mod conn;
mod link;
pub mod slots;

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{cmd, Cmd, FromRedisValue, Script, ScriptInvocation, Value};
use async_trait::async_trait;
use bytes::Bytes;

use crate::rate_limit::redis::Members;
use crate::text::parse_i64;
use crate::{Backend, Kv, StoreError, StoreResult, Swap};
use conn::Conn;

/// Far beyond any real TTL, and far below where Redis rejects an expire time as too large.
const MAX_TTL_MS: u64 = 1 << 45;

static COMPARE_AND_SET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("redis/compare_and_set.lua")));

/// [`Store`](crate::Store) on Redis; cheap to share behind an `Arc`.
pub struct RedisStore {
    pub(crate) conn: Conn,
    /// Rate-limit log members unique to this store.
    pub(crate) members: Members,
}

impl RedisStore {
    /// Whether `url` names one Redis server or a cluster this store can use: parsed as
    /// [`Self::connect`] parses it, without connecting (start-up validation).
    pub fn check_url(url: &str) -> StoreResult<()> {
        conn::dialer(url).map(|_| ())
    }

    /// Checks the URL and connects. Succeeds while Redis is down (calls then fail with
    /// `Unavailable` until it is back); fails only for a malformed URL.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Ok(Self {
            conn: Conn::open(url).await?,
            members: Members::new(),
        })
    }
}

/// A TTL in whole milliseconds, rounded up and never 0 (Redis rejects `PX 0`).
pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_micros().div_ceil(1000))
        .unwrap_or(MAX_TTL_MS)
        .clamp(1, MAX_TTL_MS)
}

/// Reads a counter's text; anything but a canonical integer is the wrong type.
pub(crate) fn parse_counter(key: &str, raw: &[u8]) -> StoreResult<i64> {
    parse_i64(raw).ok_or_else(|| StoreError::WrongType(key.to_string()))
}

/// `SET key value [NX] [PX ttl]`.
fn set_cmd(key: &str, value: &[u8], nx: bool, ttl: Option<Duration>) -> Cmd {
    let mut c = cmd("SET");
    c.arg(key).arg(value);
    if nx {
        c.arg("NX");
    }
    if let Some(t) = ttl {
        c.arg("PX").arg(ttl_ms(t));
    }
    c
}

/// A key that must travel with `anchor` (see [`slots`]), or why it cannot.
pub(crate) fn placed<'a>(cluster: bool, anchor: &str, key: &'a str) -> StoreResult<Cow<'a, str>> {
    slots::place(cluster, anchor, key).ok_or_else(|| {
        StoreError::Unavailable(
            format!("{key} cannot be given the hash slot of {anchor} on Redis Cluster").into(),
        )
    })
}

pub(crate) fn unexpected(what: &str) -> StoreError {
    StoreError::Unavailable(format!("unexpected reply from redis to {what}").into())
}

impl RedisStore {
    /// Runs one command on `key`'s connection (`key` also names the key in errors).
    pub(crate) async fn query<T: FromRedisValue>(&self, key: &str, c: Cmd) -> StoreResult<T> {
        self.conn
            .exec(key, |mut m| async move { c.query_async(&mut m).await })
            .await
    }

    /// Runs one script, its keys and arguments given, on `key`'s hash slot.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        key: &str,
        script: ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        self.conn
            .exec(
                key,
                |mut m| async move { script.invoke_async(&mut m).await },
            )
            .await
    }
}

#[async_trait]
impl Kv for RedisStore {
    fn backend(&self) -> Backend {
        if self.conn.is_cluster() {
            Backend::RedisCluster
        } else {
            Backend::Redis
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.query::<String>("", cmd("PING")).await.map(|_| ())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        let mut c = cmd("GET");
        c.arg(key);
        let raw: Option<Vec<u8>> = self.query(key, c).await?;
        Ok(raw.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<()> {
        self.query(key, set_cmd(key, &value, false, ttl)).await
    }

    async fn set_nx(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<bool> {
        match self.query(key, set_cmd(key, &value, true, ttl)).await? {
            Value::Nil => Ok(false),
            Value::Okay => Ok(true),
            _ => Err(unexpected("SET NX")),
        }
    }

    async fn compare_and_set(&self, key: &str, swap: Swap<'_>) -> StoreResult<bool> {
        let mut script = COMPARE_AND_SET.key(key);
        script
            .arg(if swap.expected.is_some() { "1" } else { "0" })
            .arg(swap.expected.unwrap_or_default())
            .arg(&swap.new[..])
            .arg(swap.ttl.map_or(0, ttl_ms));
        let swapped: i64 = self.invoke(key, script).await?;
        Ok(swapped == 1)
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        let mut c = cmd("DEL");
        c.arg(key);
        let n: i64 = self.query(key, c).await?;
        Ok(n > 0)
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let mut c = cmd("INCRBY");
        c.arg(key).arg(delta);
        self.query(key, c).await
    }

    async fn get_i64(&self, key: &str) -> StoreResult<i64> {
        match self.get(key).await? {
            None => Ok(0),
            Some(raw) => parse_counter(key, &raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_and_stays_in_range() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1001)), 2);
        assert_eq!(ttl_ms(Duration::from_secs(2)), 2000);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }

    #[tokio::test]
    async fn malformed_url_is_rejected() {
        let r = RedisStore::connect("not a url").await;
        assert!(
            matches!(r, Err(StoreError::Unavailable(ref m)) if m.to_string().contains("invalid Redis URL"))
        );
    }

    #[tokio::test]
    async fn malformed_url_keeps_the_client_error() {
        let Err(e) = RedisStore::connect("not a url").await else {
            panic!("a malformed URL was accepted");
        };
        // StoreError -> "invalid Redis URL: …" -> the Redis client's own error.
        let url = std::error::Error::source(&e).expect("the cause is kept");
        assert!(url.source().is_some_and(|c| c.is::<::redis::RedisError>()));
    }

    #[tokio::test]
    async fn down_at_start_still_constructs_and_fails_fast() {
        // Port 1 on loopback: nothing listens there, so the connect is refused at once.
        let store = RedisStore::connect("redis://127.0.0.1:1/0")
            .await
            .expect("connect must succeed while redis is down");
        let started = std::time::Instant::now();
        let r = store.ping().await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
