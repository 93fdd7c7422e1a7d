//! Behavioural cases, each run once per backend set (see `todos.rs`).

mod auth;
mod idempotency;
mod pipeline;
mod reads;
mod storable;
mod writes;

pub use auth::*;
pub use idempotency::*;
pub use pipeline::*;
pub use reads::*;
pub use storable::*;
pub use writes::*;
