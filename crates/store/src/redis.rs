//! Redis-backed store. Every compound step is one Lua script (EVALSHA, EVAL on a cold
//! cache), so it is atomic and one round trip; clocks come from Redis `TIME` so all nodes
//! agree. The same code serves one server or a Redis Cluster (`redis+cluster://` URLs).

mod conn;
mod link;
pub mod slots;

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::{cmd, Script, Value};
use async_trait::async_trait;
use bytes::Bytes;

use crate::rate_limit::{self, Limit};
use crate::text::parse_i64;
use crate::{
    Adoption, CounterOp, IdemOutcome, Limited, RateDecision, RateLimit, Store, StoreError,
    StoreResult,
};
use conn::Conn;

/// Far beyond any real TTL, and far below where Redis rejects an expire time as too large.
const MAX_TTL_MS: u64 = 1 << 45;

struct Scripts {
    adopt_counter: Script,
    compare_and_set: Script,
    idempotent_apply: Script,
    lease_acquire: Script,
    lease_count: Script,
    lease_holders: Script,
    limited_apply: Script,
    rate_limit: Script,
}

/// A script as Redis runs it: the named files (below `src/`) one after the other. The
/// limiter's Lua (`rate_limit/window.lua`) and the idempotent apply's
/// (`scripts/parts/counter_apply.lua`) are written once and put in front of the scripts
/// that call them; `cat` of the same files gives the bytes (docs/benchmarks.md loads the
/// combined script that way for `redis-benchmark`).
macro_rules! lua {
    ($($file:literal),+) => {
        Script::new(concat!($(include_str!($file)),+))
    };
}

impl Scripts {
    fn new() -> Self {
        Self {
            adopt_counter: lua!("scripts/adopt_counter.lua"),
            compare_and_set: lua!("scripts/compare_and_set.lua"),
            idempotent_apply: lua!(
                "scripts/parts/counter_apply.lua",
                "scripts/idempotent_apply.lua"
            ),
            lease_acquire: lua!("scripts/lease_acquire.lua"),
            lease_count: lua!("scripts/lease_count.lua"),
            lease_holders: lua!("scripts/lease_holders.lua"),
            limited_apply: lua!(
                "rate_limit/window.lua",
                "scripts/parts/counter_apply.lua",
                "scripts/limited_apply.lua"
            ),
            rate_limit: lua!("rate_limit/window.lua", "rate_limit/rate_limit.lua"),
        }
    }
}

/// [`Store`] on Redis; cheap to share behind an `Arc`.
pub struct RedisStore {
    conn: Conn,
    scripts: Scripts,
    /// Random per store, so rate-limit entries from different nodes never share a member.
    node_nonce: u64,
    /// Makes each rate-limit entry of this store unique.
    seq: AtomicU64,
}

impl RedisStore {
    /// Checks the URL and connects. Succeeds while Redis is down (calls then fail with
    /// `Unavailable` until it is back); fails only for a malformed URL.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Ok(Self {
            conn: Conn::open(url).await?,
            scripts: Scripts::new(),
            // RandomState is seeded from the OS's randomness.
            node_nonce: RandomState::new().hash_one(std::process::id()),
            seq: AtomicU64::new(0),
        })
    }
}

/// A TTL in whole milliseconds, rounded up and never 0 (Redis rejects `PX 0`).
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_micros().div_ceil(1000))
        .unwrap_or(MAX_TTL_MS)
        .clamp(1, MAX_TTL_MS)
}

/// Reads a counter's text; anything but a canonical integer is the wrong type.
fn parse_counter(key: &str, raw: &[u8]) -> StoreResult<i64> {
    parse_i64(raw).ok_or_else(|| StoreError::WrongType(key.to_string()))
}

/// `SET key value [NX] [PX ttl]`.
fn set_cmd(key: &str, value: &[u8], nx: bool, ttl: Option<Duration>) -> ::redis::Cmd {
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
fn placed<'a>(cluster: bool, anchor: &str, key: &'a str) -> StoreResult<Cow<'a, str>> {
    slots::place(cluster, anchor, key).ok_or_else(|| {
        StoreError::Unavailable(
            format!("{key} cannot be given the hash slot of {anchor} on Redis Cluster").into(),
        )
    })
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Unavailable(format!("unexpected reply from redis to {what}").into())
}

/// `(kind, operand)` as the scripts take a counter step.
fn step(op: CounterOp) -> (&'static str, i64) {
    match op {
        CounterOp::Add(d) => ("add", d),
        CounterOp::Set(v) => ("set", v),
    }
}

/// Reads `{status, value}` from parts/counter_apply.lua.
fn idem_outcome(
    counter: &str,
    idem_key: &str,
    status: &str,
    value: &str,
    what: &str,
) -> StoreResult<IdemOutcome> {
    match status {
        "applied" => Ok(IdemOutcome::Applied(parse_counter(
            counter,
            value.as_bytes(),
        )?)),
        "replayed" => Ok(IdemOutcome::Replayed(parse_counter(
            idem_key,
            value.as_bytes(),
        )?)),
        "mismatch" => Ok(IdemOutcome::Mismatch),
        "overflow" => Ok(IdemOutcome::Overflow),
        _ => Err(unexpected(what)),
    }
}

impl RedisStore {
    /// A rate-limit log member no other call of any node uses.
    fn member(&self) -> String {
        format!(
            "{:x}.{:x}",
            self.node_nonce,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The limiter on the log stored at `log` (already placed).
    async fn rate_limit_at(
        &self,
        log: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        let Some(l) = Limit::new(limit, window) else {
            return Ok(rate_limit::refuse_all(window));
        };
        let script = &self.scripts.rate_limit;
        let member = self.member();
        let (allowed, count, retry_us, reset_us): (i64, i64, i64, i64) = self
            .conn
            .exec(log, |mut m| async move {
                script
                    .key(log)
                    .arg(l.limit)
                    .arg(l.window_us)
                    .arg(member)
                    .invoke_async(&mut m)
                    .await
            })
            .await?;
        l.script_decision([allowed, count, retry_us, reset_us])
            .ok_or_else(|| unexpected("rate_limit"))
    }
}

#[async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        if self.conn.is_cluster() {
            "redis-cluster"
        } else {
            "redis"
        }
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn ping(&self) -> StoreResult<()> {
        let c = cmd("PING");
        self.conn
            .exec(
                "",
                |mut m| async move { c.query_async::<String>(&mut m).await },
            )
            .await
            .map(|_| ())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        let mut c = cmd("GET");
        c.arg(key);
        let raw = self
            .conn
            .exec(key, |mut m| async move {
                c.query_async::<Option<Vec<u8>>>(&mut m).await
            })
            .await?;
        Ok(raw.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<()> {
        let c = set_cmd(key, &value, false, ttl);
        self.conn
            .exec(key, |mut m| async move { c.exec_async(&mut m).await })
            .await
    }

    async fn set_nx(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> StoreResult<bool> {
        let c = set_cmd(key, &value, true, ttl);
        let reply = self
            .conn
            .exec(
                key,
                |mut m| async move { c.query_async::<Value>(&mut m).await },
            )
            .await?;
        match reply {
            Value::Nil => Ok(false),
            Value::Okay => Ok(true),
            _ => Err(unexpected("SET NX")),
        }
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Bytes,
        ttl: Option<Duration>,
    ) -> StoreResult<bool> {
        let script = &self.scripts.compare_and_set;
        let has_expected = if expected.is_some() { "1" } else { "0" };
        let expected = expected.unwrap_or_default().to_vec();
        let ttl = ttl.map_or(0, ttl_ms);
        let swapped: i64 = self
            .conn
            .exec(key, |mut m| async move {
                script
                    .key(key)
                    .arg(has_expected)
                    .arg(expected)
                    .arg(&new[..])
                    .arg(ttl)
                    .invoke_async(&mut m)
                    .await
            })
            .await?;
        Ok(swapped == 1)
    }

    async fn adopt_counter(
        &self,
        from: &str,
        seen: &[u8],
        to: &str,
        value: i64,
        marker: &str,
    ) -> StoreResult<Adoption> {
        let script = &self.scripts.adopt_counter;
        let seen = seen.to_vec();
        let cluster = self.conn.is_cluster();
        if cluster && slots::slot(from) != slots::slot(to) {
            // One atomic step cannot read another slot; the seeds never ran on a cluster.
            return Err(StoreError::Unavailable(
                format!(
                    "{from} and {to} are in different hash slots: on Redis Cluster, copy {from} by hand"
                )
                .into(),
            ));
        }
        let marker = placed(cluster, to, marker)?;
        let reply: String = self
            .conn
            .exec(to, |mut m| async move {
                script
                    .key(from)
                    .key(to)
                    .key(&*marker)
                    .arg(seen)
                    .arg(value.to_string())
                    .invoke_async(&mut m)
                    .await
            })
            .await?;
        match reply.as_str() {
            "moved" => Ok(Adoption::Moved),
            "done" => Ok(Adoption::Done),
            "absent" => Ok(Adoption::Absent),
            "changed" => Ok(Adoption::Changed),
            "exists" => Ok(Adoption::TargetExists),
            _ => Err(unexpected("adopt_counter")),
        }
    }

    async fn del(&self, key: &str) -> StoreResult<bool> {
        let mut c = cmd("DEL");
        c.arg(key);
        let n = self
            .conn
            .exec(
                key,
                |mut m| async move { c.query_async::<i64>(&mut m).await },
            )
            .await?;
        Ok(n > 0)
    }

    async fn incr_by(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let mut c = cmd("INCRBY");
        c.arg(key).arg(delta);
        self.conn
            .exec(
                key,
                |mut m| async move { c.query_async::<i64>(&mut m).await },
            )
            .await
    }

    async fn get_i64(&self, key: &str) -> StoreResult<i64> {
        match self.get(key).await? {
            None => Ok(0),
            Some(raw) => parse_counter(key, &raw),
        }
    }

    async fn idempotent_apply(
        &self,
        counter: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<IdemOutcome> {
        let script = &self.scripts.idempotent_apply;
        let (kind, operand) = step(op);
        let ttl = ttl_ms(ttl);
        let record = placed(self.conn.is_cluster(), counter, idem_key)?;
        let (status, value): (String, String) = self
            .conn
            .exec(counter, |mut m| async move {
                script
                    .key(counter)
                    .key(&*record)
                    .arg(kind)
                    .arg(operand)
                    .arg(fingerprint)
                    .arg(ttl)
                    .invoke_async(&mut m)
                    .await
            })
            .await?;
        idem_outcome(counter, idem_key, &status, &value, "idempotent_apply")
    }

    async fn lease_acquire(
        &self,
        pool: &str,
        holder: &str,
        capacity: u32,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let script = &self.scripts.lease_acquire;
        let ttl = ttl_ms(ttl);
        let acquired: i64 = self
            .conn
            .exec(pool, |mut m| async move {
                script
                    .key(pool)
                    .arg(holder)
                    .arg(capacity)
                    .arg(ttl)
                    .invoke_async(&mut m)
                    .await
            })
            .await?;
        Ok(acquired == 1)
    }

    async fn lease_release(&self, pool: &str, holder: &str) -> StoreResult<()> {
        let mut c = cmd("ZREM");
        c.arg(pool).arg(holder);
        self.conn
            .exec(pool, |mut m| async move { c.exec_async(&mut m).await })
            .await
    }

    async fn lease_count(&self, pool: &str) -> StoreResult<u32> {
        let script = &self.scripts.lease_count;
        let n: u64 = self
            .conn
            .exec(pool, |mut m| async move {
                script.key(pool).invoke_async(&mut m).await
            })
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn lease_holders(&self, pool: &str) -> StoreResult<Vec<String>> {
        let script = &self.scripts.lease_holders;
        let mut holders: Vec<String> = self
            .conn
            .exec(pool, |mut m| async move {
                script.key(pool).invoke_async(&mut m).await
            })
            .await?;
        holders.sort();
        Ok(holders)
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        self.rate_limit_at(key, limit, window).await
    }

    async fn rate_limit_beside(
        &self,
        anchor: &str,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> StoreResult<RateDecision> {
        let log = placed(self.conn.is_cluster(), anchor, key)?;
        self.rate_limit_at(&log, limit, window).await
    }

    async fn limited_apply(
        &self,
        rate: RateLimit<'_>,
        counter: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<Limited<IdemOutcome>> {
        let Some(l) = Limit::new(rate.limit, rate.window) else {
            return Ok(Limited::Refused(rate_limit::refuse_all(rate.window)));
        };
        let script = &self.scripts.limited_apply;
        let (kind, operand) = step(op);
        let ttl = ttl_ms(ttl);
        let member = self.member();
        // On a cluster all three keys take the counter's slot (one script, one slot).
        let cluster = self.conn.is_cluster();
        let log = placed(cluster, counter, rate.key)?;
        let record = placed(cluster, counter, idem_key)?;
        let reply: (i64, i64, i64, i64, String, String) = self
            .conn
            .exec(counter, |mut m| async move {
                script
                    .key(&*log)
                    .key(counter)
                    .key(&*record)
                    .arg(l.limit)
                    .arg(l.window_us)
                    .arg(member)
                    .arg(kind)
                    .arg(operand)
                    .arg(fingerprint)
                    .arg(ttl)
                    .invoke_async(&mut m)
                    .await
            })
            .await?;
        let (allowed, count, retry_us, reset_us, status, value) = reply;
        let decision = l
            .script_decision([allowed, count, retry_us, reset_us])
            .ok_or_else(|| unexpected("limited_apply"))?;
        if !decision.allowed {
            return match status.as_str() {
                "refused" => Ok(Limited::Refused(decision)),
                _ => Err(unexpected("limited_apply")),
            };
        }
        let outcome = idem_outcome(counter, idem_key, &status, &value, "limited_apply")?;
        Ok(Limited::Admitted(decision, outcome))
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
