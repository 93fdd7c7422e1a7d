//! The Redis half: `idempotent_apply.lua` after `counter_apply.lua`, one script on the
//! counter's hash slot (the record is placed beside the counter on Redis Cluster).

use std::borrow::Cow;
use std::sync::LazyLock;

use ::redis::{Script, ScriptInvocation};
use async_trait::async_trait;

use super::{Apply, CounterOp, IdemOutcome, Idempotency};
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
pub(crate) struct Step<'a> {
    counter: &'a str,
    idem_key: &'a str,
    record: Cow<'a, str>,
    kind: &'static str,
    operand: i64,
    fingerprint: &'a str,
    ttl_ms: u64,
}

impl<'a> Step<'a> {
    pub fn new(store: &RedisStore, apply: Apply<'a>) -> StoreResult<Self> {
        let (kind, operand) = match apply.op {
            CounterOp::Add(d) => ("add", d),
            CounterOp::Set(v) => ("set", v),
        };
        Ok(Self {
            counter: apply.counter,
            idem_key: apply.key,
            record: placed(store.conn.is_cluster(), apply.counter, apply.key)?,
            kind,
            operand,
            fingerprint: apply.fingerprint,
            ttl_ms: ttl_ms(apply.ttl),
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
    async fn idempotent_apply(&self, apply: Apply<'_>) -> StoreResult<IdemOutcome> {
        let step = Step::new(self, apply)?;
        let mut script = IDEMPOTENT_APPLY.prepare_invoke();
        step.onto(&mut script);
        let (status, value): (String, String) = self.invoke(apply.counter, script).await?;
        step.outcome(&status, &value, "idempotent_apply")
    }
}
