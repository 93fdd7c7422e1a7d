//! The Redis half: `idempotent_apply.lua` after `counter_apply.lua`, one script on the
//! counter's hash slot (the record is placed beside the counter on Redis Cluster).

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{Script, ScriptInvocation};
use async_trait::async_trait;

use super::{CounterOp, IdemOutcome, Idempotency};
use crate::redis::{parse_counter, placed, ttl_ms, unexpected};
use crate::{RedisStore, StoreResult};

static IDEMPOTENT_APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("counter_apply.lua"),
        include_str!("idempotent_apply.lua")
    ))
});

/// One call of `counter_apply(...)` as a script takes it: its two keys and four arguments,
/// the record already placed beside the counter.
pub(crate) struct Apply<'a> {
    counter: &'a str,
    idem_key: &'a str,
    record: Cow<'a, str>,
    kind: &'static str,
    operand: i64,
    fingerprint: &'a str,
    ttl_ms: u64,
}

impl<'a> Apply<'a> {
    pub fn new(
        store: &RedisStore,
        counter: &'a str,
        op: CounterOp,
        idem_key: &'a str,
        fingerprint: &'a str,
        ttl: Duration,
    ) -> StoreResult<Self> {
        let (kind, operand) = match op {
            CounterOp::Add(d) => ("add", d),
            CounterOp::Set(v) => ("set", v),
        };
        Ok(Self {
            counter,
            idem_key,
            record: placed(store.conn.is_cluster(), counter, idem_key)?,
            kind,
            operand,
            fingerprint,
            ttl_ms: ttl_ms(ttl),
        })
    }

    /// Adds the counter and the record to the script's keys and the step to its arguments,
    /// after whatever keys and arguments come before them.
    pub fn onto(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation
            .key(self.counter)
            .key(&*self.record)
            .arg(self.kind)
            .arg(self.operand)
            .arg(self.fingerprint)
            .arg(self.ttl_ms);
    }

    /// Reads `{status, value}` from `counter_apply`.
    pub fn outcome(&self, status: &str, value: &str, what: &str) -> StoreResult<IdemOutcome> {
        let value = value.as_bytes();
        match status {
            "applied" => Ok(IdemOutcome::Applied(parse_counter(self.counter, value)?)),
            "replayed" => Ok(IdemOutcome::Replayed(parse_counter(self.idem_key, value)?)),
            "mismatch" => Ok(IdemOutcome::Mismatch),
            "overflow" => Ok(IdemOutcome::Overflow),
            _ => Err(unexpected(what)),
        }
    }
}

#[async_trait]
impl Idempotency for RedisStore {
    async fn idempotent_apply(
        &self,
        counter: &str,
        op: CounterOp,
        idem_key: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> StoreResult<IdemOutcome> {
        let apply = Apply::new(self, counter, op, idem_key, fingerprint, ttl)?;
        let mut script = IDEMPOTENT_APPLY.prepare_invoke();
        apply.onto(&mut script);
        let (status, value): (String, String) = self.invoke(counter, script).await?;
        apply.outcome(&status, &value, "idempotent_apply")
    }
}
