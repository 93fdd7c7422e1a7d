//! What the handlers share.

use std::sync::Arc;

use floodgate_core::AppContext;

use crate::{Options, Settings};

#[derive(Clone)]
pub struct ApiState {
    pub ctx: AppContext,
    pub opts: Arc<Options>,
    /// Read once at start-up: a request uses its bounds and topic without looking them up.
    pub settings: Arc<Settings>,
    /// The queue-bound pool of this node's topic.
    pub pool: Arc<str>,
}
