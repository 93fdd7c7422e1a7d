//! Gift codes (seeds 000/001): `POST /queue` publishes a request on the bus, a worker
//! answers with a code, and the reply is routed back to the node that asked. At most
//! `RATE_LIMIT_CAPACITY` requests are in flight across the cluster (see `admission`). Its
//! settings are in `settings`.

pub mod admission;
mod api;
mod error;
pub mod model;
mod panel;
mod replies;
pub mod settings;
mod state;
mod worker;

pub use api::openapi;
pub use error::Error;
pub use panel::panel;
pub use replies::Replies;
pub use settings::Settings;
pub(crate) use state::short_retention;
pub use state::GiftCodes;
pub use worker::{new_gift_code, workers};
