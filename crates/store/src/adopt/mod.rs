//! Adoption: taking over, once, a counter another program kept under another key. The
//! memory half is in `memory.rs`; the Redis half is `adopt_counter.lua`, run by `redis.rs`.

use async_trait::async_trait;

use crate::StoreResult;

mod memory;
mod redis;

/// Outcome of [`CounterAdoption::adopt_counter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// Copied now; the marker records it.
    Moved,
    /// The marker exists: adopted before (by this node or another).
    Done,
    /// The source key is gone.
    Absent,
    /// The source no longer reads as it did: read it again.
    Changed,
    /// Our key already holds a value; nothing was overwritten.
    TargetExists,
}

/// An adoption asked for ([`CounterAdoption::adopt_counter`]): the counter another program
/// kept at `from`, read as `seen` (its bytes) and `value` (their number), to be kept at `to`
/// from now on, `marker` recording that it was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adopt<'a> {
    pub from: &'a str,
    pub seen: &'a [u8],
    pub to: &'a str,
    pub value: i64,
    pub marker: &'a str,
}

#[async_trait]
pub trait CounterAdoption: Send + Sync + 'static {
    /// Takes over a counter another program kept at `from`, once, in one atomic step: when
    /// `marker` is absent, `from` still reads `seen` and `to` is absent, sets `to` to
    /// `value` and `marker` to `seen`. `from` is left as it was.
    async fn adopt_counter(&self, adopt: Adopt<'_>) -> StoreResult<Adoption>;
}
