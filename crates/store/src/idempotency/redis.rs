//! The Redis half: `idempotent_apply.lua` after `counter_apply.lua`, one script on the
//! counter's hash slot (the record is placed beside the counter on Redis Cluster).

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;
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

/// `(kind, operand)` as the scripts take a counter step.
pub(crate) fn step(op: CounterOp) -> (&'static str, i64) {
    match op {
        CounterOp::Add(d) => ("add", d),
        CounterOp::Set(v) => ("set", v),
    }
}

/// Reads `{status, value}` from counter_apply.lua.
pub(crate) fn outcome(
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
        let script = &*IDEMPOTENT_APPLY;
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
        outcome(counter, idem_key, &status, &value, "idempotent_apply")
    }
}
