//! The memory store's half, key by key.

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Adopt, Adoption, CounterAdoption};
use crate::memory::entry::{as_bytes, insert, live, Value};
use crate::{MemoryStore, StoreResult};

#[async_trait]
impl CounterAdoption for MemoryStore {
    /// Key by key rather than in one step: an in-process store holds only what this process
    /// wrote, and its one caller runs the adoption once per process.
    async fn adopt_counter(&self, adopt: Adopt<'_>) -> StoreResult<Adoption> {
        let Adopt {
            from,
            seen,
            to,
            value,
            marker,
        } = adopt;
        let now = Instant::now();
        let read = |key: &str| -> StoreResult<Option<Bytes>> {
            let mut map = self.lock(key);
            live(&mut map, key, now)
                .map(|e| as_bytes(key, &e.value))
                .transpose()
        };
        if read(marker)?.is_some() {
            return Ok(Adoption::Done);
        }
        match read(from)? {
            None => return Ok(Adoption::Absent),
            Some(cur) if cur[..] != *seen => return Ok(Adoption::Changed),
            Some(_) => {}
        }
        {
            let mut map = self.lock(to);
            if live(&mut map, to, now).is_some() {
                return Ok(Adoption::TargetExists);
            }
            insert(&mut map, to, Value::Int(value), None);
        }
        let mut map = self.lock(marker);
        insert(
            &mut map,
            marker,
            Value::Bytes(Bytes::copy_from_slice(seen)),
            None,
        );
        Ok(Adoption::Moved)
    }
}
