//! One client connection: its state, I/O wrapper, body deadline, service and watchdog.
//! See docs/architecture.md ("Connection bounds") for the rules they enforce.

mod body;
mod io;
mod service;
mod state;
mod watchdog;

pub use io::Tracked;
pub use service::ConnService;
pub use state::{ConnState, Limits};
pub use watchdog::Watched;
