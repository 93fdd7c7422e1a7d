//! The server core shared by every service: configuration, backends, HTTP serving,
//! metrics and logging. Services add their own routers on top (see the `floodgate` crate).

pub mod backends;
pub mod config;
pub mod context;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod panel;
pub mod retry;
pub mod shutdown;
pub mod stats;
pub mod telemetry;

pub use backends::Backends;
pub use config::Config;
pub use context::AppContext;
