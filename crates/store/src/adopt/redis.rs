//! The Redis half: `adopt_counter.lua`, one step on the target's hash slot.

use std::sync::LazyLock;

use ::redis::Script;
use async_trait::async_trait;

use super::{Adopt, Adoption, CounterAdoption};
use crate::redis::{placed, slots, unexpected};
use crate::{RedisStore, StoreError, StoreResult};

static ADOPT_COUNTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("adopt_counter.lua")));

#[async_trait]
impl CounterAdoption for RedisStore {
    async fn adopt_counter(&self, adopt: Adopt<'_>) -> StoreResult<Adoption> {
        let (from, to) = (adopt.from, adopt.to);
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
        let marker = placed(cluster, to, adopt.marker)?;
        let mut script = ADOPT_COUNTER.key(from);
        script
            .key(to)
            .key(&*marker)
            .arg(adopt.seen)
            .arg(adopt.value.to_string());
        let reply: String = self.invoke(to, script).await?;
        match reply.as_str() {
            "moved" => Ok(Adoption::Moved),
            "done" => Ok(Adoption::Done),
            "absent" => Ok(Adoption::Absent),
            "changed" => Ok(Adoption::Changed),
            "exists" => Ok(Adoption::TargetExists),
            _ => Err(unexpected("adopt_counter")),
        }
    }
}
