//! floodgate: the gift-code, prime-job, todo and abacus services from one binary.
//! `app` wires the core, the backends and the service routers together; the binary in
//! `main.rs` only parses the command line.

pub mod app;
pub mod cli;
pub mod devmode;
pub mod settings;
pub mod workers;

pub use app::{start, Running, StartError, StartOptions, MIGRATIONS};
