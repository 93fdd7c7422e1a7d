//! What a service needs from the node: its configuration and the shared backends.

use std::sync::Arc;

use crate::{Backends, Config};

#[derive(Clone)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub backends: Backends,
}

impl AppContext {
    pub fn new(config: Config, backends: Backends) -> Self {
        AppContext {
            config: Arc::new(config),
            backends,
        }
    }
}
