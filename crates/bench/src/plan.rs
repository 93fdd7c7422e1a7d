//! A load run decided before it starts: targets resolved, requests encoded, load shape.

use std::net::SocketAddr;
use std::time::Duration;

use crate::args::BenchArgs;
use crate::error::BenchError;
use crate::request::{RequestSpec, Template};
use crate::target::Target;

/// Default run time when neither `-d` nor `-n` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// One server (host:port) and the URLs sent to it.
#[derive(Debug, Clone)]
pub struct Host {
    pub addrs: Vec<SocketAddr>,
    /// Indexes into `Plan::targets` / `Plan::templates`.
    pub urls: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub templates: Vec<Template>,
    pub hosts: Vec<Host>,
    pub connections: usize,
    pub threads: usize,
    pub pipelining: usize,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    /// Total requests per second (open model).
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub timeout: Duration,
    /// How long an idle worker polls before it sleeps (`--idle-spin`).
    pub idle_spin: Duration,
    /// HEAD requests: responses carry no body.
    pub no_body: bool,
    pub keep_rows: bool,
}

impl Plan {
    pub async fn from_args(args: &BenchArgs) -> Result<Self, BenchError> {
        let option = |why: &str| Err(BenchError::Option(why.to_string()));
        if args.connections == 0 {
            return option("-c must be at least 1");
        }
        if args.threads == 0 || args.threads > args.connections {
            return option("-t must be between 1 and the number of connections");
        }
        if args.pipelining == 0 {
            return option("-p must be at least 1");
        }
        if args.requests == Some(0) {
            return option("-n must be at least 1");
        }
        if args.duration.is_some_and(|d| d.is_zero()) {
            return option("-d must be positive");
        }
        if let Some(rate) = args.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return option("-R must be a positive number");
            }
            if args.pipelining > 1 {
                return option("-p cannot be combined with -R (the open model sends one request at a time per connection)");
            }
        }
        if args.timeout.is_zero() {
            return option("--timeout must be positive");
        }
        let body = match &args.body_file {
            Some(path) => std::fs::read(path).map_err(|source| BenchError::ReadFile {
                path: path.clone(),
                source,
            })?,
            None => args.body.clone().unwrap_or_default().into_bytes(),
        };
        let spec = RequestSpec::new(&args.method, &args.headers, body, args.idempotency)?;
        let targets = args
            .urls
            .iter()
            .map(|url| Target::parse(url))
            .collect::<Result<Vec<_>, _>>()?;
        let templates = targets.iter().map(|t| spec.encode(t)).collect();
        let hosts = group_hosts(&targets).await?;
        if hosts.len() > args.connections {
            return option("need at least one connection per host (-c below the number of hosts)");
        }
        let duration = match (args.duration, args.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        };
        Ok(Self {
            targets,
            templates,
            hosts,
            connections: args.connections,
            threads: args.threads,
            pipelining: args.pipelining,
            duration,
            requests: args.requests,
            rate: args.rate,
            warmup: args.warmup.unwrap_or_default(),
            timeout: args.timeout,
            idle_spin: args.idle_spin,
            no_body: spec.is_head(),
            keep_rows: args.csv.is_some(),
        })
    }

    /// Global connection ids driven by worker `index` (spread so hosts spread too).
    pub fn connections_of(&self, index: usize) -> Vec<usize> {
        (index..self.connections).step_by(self.threads).collect()
    }

    /// Requests worker `index` may send under `-n`.
    pub fn budget_of(&self, index: usize) -> Option<u64> {
        let total = self.requests?;
        let threads = self.threads as u64;
        let extra = u64::from((index as u64) < total % threads);
        Some(total / threads + extra)
    }

    pub fn host_of(&self, conn: usize) -> &Host {
        &self.hosts[conn % self.hosts.len()]
    }
}

/// Groups URLs by host:port, resolving each host once.
async fn group_hosts(targets: &[Target]) -> Result<Vec<Host>, BenchError> {
    let mut keys: Vec<(String, u16)> = Vec::new();
    let mut hosts: Vec<Host> = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let key = target.endpoint();
        if let Some(at) = keys.iter().position(|k| *k == key) {
            hosts[at].urls.push(index);
            continue;
        }
        let addrs = resolve(target).await?;
        keys.push(key);
        hosts.push(Host {
            addrs,
            urls: vec![index],
        });
    }
    Ok(hosts)
}

pub async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, BenchError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| BenchError::Url {
            url: target.url.clone(),
            why: format!("cannot resolve host: {e}"),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(BenchError::Url {
            url: target.url.clone(),
            why: "host has no address".to_string(),
        });
    }
    Ok(addrs)
}
