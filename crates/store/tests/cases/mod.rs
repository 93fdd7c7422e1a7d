//! Backend-independent behaviour. Every case takes the store and a unique key prefix.

mod counters;
mod idempotency;
mod kv;
mod leases;
mod limited;
mod rate;

pub use counters::*;
pub use idempotency::*;
pub use kv::*;
pub use leases::*;
pub use limited::*;
pub use rate::*;
