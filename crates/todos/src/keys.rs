//! Where the todo list's version and cached pages live in the store.

/// Store keys, namespaced by topic so that independent deployments (or tests) sharing one
/// Redis never read each other's lists. The default topic keeps the plain `todos:` prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn for_topic(topic: &str) -> Self {
        let prefix = if topic == "todo-commands" {
            "todos:".to_string()
        } else {
            format!("todos:{topic}:")
        };
        Keys { prefix }
    }
    pub fn version(&self) -> String {
        format!("{}ver", self.prefix)
    }
    pub fn list(&self, ver: u64, limit: u64) -> String {
        format!("{}list:{ver}:{limit}", self.prefix)
    }
}
