//! The memory store's half: the counter and its record under their shards' locks.

use std::time::Instant;

use async_trait::async_trait;

use super::{Apply, CounterOp, IdemOutcome, Idempotency};
use crate::memory::entry::{counter, expiry, insert, live, Value};
use crate::{MemoryStore, StoreError, StoreResult};

/// What an idempotency key holds: the request's fingerprint and the counter it left.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    fingerprint: Box<str>,
    result: i64,
}

impl MemoryStore {
    fn idem_locked(&self, apply: Apply<'_>) -> StoreResult<IdemOutcome> {
        let Apply {
            counter: counter_key,
            op,
            key: idem_key,
            fingerprint,
            ttl,
        } = apply;
        let now = Instant::now();
        // first = counter's shard, second = record's shard (the same map when they share one).
        let mut pair = self.lock_pair(counter_key, idem_key);
        if let Some(e) = live(pair.second(), idem_key, now) {
            return match &e.value {
                Value::Record(r) if *r.fingerprint == *fingerprint => {
                    Ok(IdemOutcome::Replayed(r.result))
                }
                Value::Record(_) => Ok(IdemOutcome::Mismatch),
                _ => Err(StoreError::WrongType(idem_key.to_string())),
            };
        }
        let (next, expires) = match op {
            CounterOp::Add(d) => {
                let (current, expires) = counter(pair.first(), counter_key, now)?;
                match current.checked_add(d) {
                    Some(n) => (n, expires),
                    None => return Ok(IdemOutcome::Overflow),
                }
            }
            // Like SET KEEPTTL: overwrites whatever is there, keeps its expiry.
            CounterOp::Set(v) => (
                v,
                live(pair.first(), counter_key, now).and_then(|e| e.expires),
            ),
        };
        insert(pair.first(), counter_key, Value::Int(next), expires);
        let record = Value::Record(Record {
            fingerprint: fingerprint.into(),
            result: next,
        });
        insert(pair.second(), idem_key, record, expiry(now, Some(ttl)));
        Ok(IdemOutcome::Applied(next))
    }
}

#[async_trait]
impl Idempotency for MemoryStore {
    async fn idempotent_apply(&self, apply: Apply<'_>) -> StoreResult<IdemOutcome> {
        let outcome = self.idem_locked(apply);
        self.after_write();
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Kv;

    #[tokio::test]
    async fn pair_lock_handles_same_and_different_shards() {
        let s = MemoryStore::new();
        // Find two keys on one shard and two on different shards.
        let base = s.shard_of("c0");
        let same = (1..)
            .map(|i| format!("r{i}"))
            .find(|k| s.shard_of(k) == base)
            .expect("some key shares the shard");
        let other = (1..)
            .map(|i| format!("r{i}"))
            .find(|k| s.shard_of(k) != base)
            .expect("some key is elsewhere");
        let ttl = Duration::from_secs(60);
        for rec in [same, other] {
            let apply = Apply {
                counter: "c0",
                op: CounterOp::Add(2),
                key: &rec,
                fingerprint: "f",
                ttl,
            };
            let first = s.idempotent_apply(apply).await.expect("apply");
            let again = s.idempotent_apply(apply).await.expect("replay");
            let IdemOutcome::Applied(v) = first else {
                panic!("expected Applied, got {first:?}");
            };
            assert_eq!(again, IdemOutcome::Replayed(v));
        }
        assert_eq!(s.get_i64("c0").await.expect("get"), 4);
    }
}
