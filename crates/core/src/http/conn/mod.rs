//! One client connection: its state, I/O wrapper, body deadline, service, watchdog, and
//! hyper's state built only while the client talks (`park`).
//! See docs/operations.md ("Connection bounds") for the rules they enforce.

mod body;
mod io;
mod park;
mod service;
mod state;
pub(crate) mod trim;
mod watchdog;

#[cfg(test)]
mod tests;

pub use park::{Conn, Drain};
pub use state::Limits;
pub use watchdog::Watched;
