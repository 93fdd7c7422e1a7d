//! Backend-independent behaviour; every case takes its [`Env`](crate::common::Env).

mod api;
mod idem;
mod nodes;
mod rate;

pub use api::*;
pub use idem::*;
pub use nodes::*;
pub use rate::*;
