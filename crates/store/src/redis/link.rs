//! One server or a Redis Cluster behind one connection type, chosen by the URL, so every
//! store step is written once. The cluster client follows MOVED/ASK and re-reads the slot
//! map after a failover by itself.

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Client, Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// The scheme that selects a cluster: `redis+cluster://host:port,host:port`.
const CLUSTER_SCHEME: &str = "redis+cluster://";

/// What a connection is made from.
pub(super) enum Dialer {
    Single(Client),
    Cluster(ClusterClient),
}

impl Dialer {
    /// `redis+cluster://[auth@]h:p,h:p` or a comma-separated list of `redis://` URLs is a
    /// cluster (the nodes are seeds: the client learns the rest); anything else one server.
    pub fn parse(
        url: &str,
        cluster: impl FnOnce(Vec<String>) -> RedisResult<ClusterClient>,
        single: impl FnOnce(&str) -> RedisResult<Client>,
    ) -> RedisResult<Self> {
        match cluster_seeds(url) {
            Some(seeds) => cluster(seeds).map(Self::Cluster),
            None => single(url).map(Self::Single),
        }
    }
}

/// The seed URLs of a cluster URL, None for a single-server URL.
fn cluster_seeds(url: &str) -> Option<Vec<String>> {
    if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
        let rest = rest.trim_end_matches('/');
        // Credentials, when given, come once before the first host and apply to every node.
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((auth, hosts)) => (format!("{auth}@"), hosts),
            None => (String::new(), rest),
        };
        let seeds = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{auth}{h}"))
            .collect();
        return Some(seeds);
    }
    if url.contains(',') {
        return Some(url.split(',').map(|u| u.trim().to_string()).collect());
    }
    None
}

/// A live connection of either kind; clones share it.
#[derive(Clone)]
pub enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(c) => c.req_packed_commands(cmd, offset, count),
            Link::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cluster_seeds;

    #[test]
    fn cluster_urls_name_their_seeds() {
        assert_eq!(cluster_seeds("redis://127.0.0.1:6379/0"), None);
        assert_eq!(
            cluster_seeds("redis+cluster://a:1,b:2/").unwrap(),
            ["redis://a:1", "redis://b:2"]
        );
        assert_eq!(
            cluster_seeds("redis+cluster://u:p@w@a:1,b:2").unwrap(),
            ["redis://u:p@w@a:1", "redis://u:p@w@b:2"]
        );
        assert_eq!(
            cluster_seeds("redis://a:1, redis://b:2").unwrap(),
            ["redis://a:1", "redis://b:2"]
        );
    }
}
