//! What the handlers share.

use std::sync::Arc;

use floodgate_core::AppContext;

use crate::Options;

#[derive(Clone)]
pub struct ApiState {
    pub ctx: AppContext,
    pub opts: Arc<Options>,
    /// The queue-bound pool of this node's topic.
    pub pool: Arc<str>,
}
