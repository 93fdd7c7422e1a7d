//! A Redis Cluster the test owns (3 masters + 3 replicas, six redis-server processes),
//! for fault tests the shared cluster of `scripts/services` must not suffer: kill a
//! master, watch its replica take over, bring the old one back as a replica, fail over
//! by hand. The cluster is asked about its topology (`CLUSTER NODES`) rather than
//! assumed, since `redis-cli --cluster create` pairs masters and replicas itself.

use crate::process::Process;
use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NODES: usize = 6;
const SLOTS: usize = 16384;

/// How long a node may be silent before the others count it as failing; the replica's
/// promotion follows ~1 s later. Lower values fail over sooner, but on a loaded 2-core
/// test machine risk failovers nobody asked for.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// Six cluster nodes on free ports, each in its own directory (its nodes.conf is what
/// lets a restarted node rejoin). Killed, and the directories removed, on drop (kept
/// when the test panics, for the logs).
pub struct RedisCluster {
    nodes: Vec<Process>,
    /// Killed or paused by the test: not asked anything, must not serve slots.
    down: Vec<bool>,
    ports: Vec<u16>,
    /// Data and cluster bus ports, given back on drop.
    reserved: Vec<u16>,
    dir: PathBuf,
}

/// A running cluster, every slot served, replicas in sync; None (after `skip`) when
/// redis-server or redis-cli is not installed.
pub fn redis_cluster() -> Option<RedisCluster> {
    for tool in ["redis-server", "redis-cli"] {
        if !crate::installed(tool) {
            crate::skip(&format!("{tool} on PATH"));
            return None;
        }
    }
    Some(RedisCluster::start())
}

impl RedisCluster {
    fn start() -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "floodgate-redis-cluster-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // data ports, then cluster bus ports (the default, port + 10000, may be taken)
        let ports = private_ports(2 * NODES);
        let mut c = RedisCluster {
            nodes: Vec::new(),
            down: vec![false; NODES],
            ports: ports[..NODES].to_vec(),
            reserved: ports.clone(),
            dir,
        };
        for (i, &port) in ports[..NODES].iter().enumerate() {
            let node_dir = c.dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("create cluster node dir");
            let args = vec![
                "redis-server".to_string(),
                "--port".into(),
                port.to_string(),
                "--cluster-port".into(),
                ports[NODES + i].to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                format!("nodes-{port}.conf"),
                "--cluster-node-timeout".into(),
                NODE_TIMEOUT_MS.to_string(),
                // a replica may always take over, however long it was cut off
                "--cluster-replica-validity-factor".into(),
                "0".into(),
                // replicas (and restarted nodes) sync at once, not after 5 s
                "--repl-diskless-sync-delay".into(),
                "0".into(),
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                node_dir.display().to_string(),
                "--logfile".into(),
                node_dir.join("redis.log").display().to_string(),
            ];
            c.nodes.push(Process::start(args, port, node_dir));
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(c.ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = create
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        c.wait_ok(Duration::from_secs(60));
        c
    }

    /// `redis+cluster://127.0.0.1:P1,...,127.0.0.1:P6`, every node a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    pub fn port(&self, node: usize) -> u16 {
        self.ports[node]
    }

    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The node serving `slot` as master, as the first live node sees it (call
    /// `wait_ok` after a fault so that every node agrees).
    pub fn master_of_slot(&self, slot: u16) -> usize {
        let view = self.view_from_any();
        view.iter()
            .find(|n| n.is_master() && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .and_then(|n| self.index(n.port))
            .unwrap_or_else(|| panic!("no master serves slot {slot}: {view:?}"))
    }

    /// A replica of `master` (one the test has not killed or paused, when there is one).
    pub fn replica_of(&self, master: usize) -> usize {
        let view = self.view_from_any();
        let id = &view
            .iter()
            .find(|n| n.port == self.ports[master])
            .unwrap_or_else(|| panic!("node {master} unknown to the cluster: {view:?}"))
            .id;
        let replicas: Vec<usize> = view
            .iter()
            .filter(|n| n.flags.iter().any(|f| f == "slave") && n.master_id == *id)
            .filter_map(|n| self.index(n.port))
            .collect();
        replicas
            .iter()
            .copied()
            .find(|&i| !self.down[i])
            .or_else(|| replicas.first().copied())
            .unwrap_or_else(|| panic!("node {master} has no replica: {view:?}"))
    }

    /// Indexes of the nodes serving slots as masters, in slot order.
    pub fn masters(&self) -> Vec<usize> {
        let view = self.view_from_any();
        let mut m: Vec<(u16, usize)> = view
            .iter()
            .filter(|n| n.is_master() && !n.slots.is_empty())
            .filter_map(|n| Some((n.slots[0].0, self.index(n.port)?)))
            .collect();
        m.sort();
        m.into_iter().map(|(_, i)| i).collect()
    }

    /// kill -9, as a crash would. Without persistence, a master restarted before its
    /// replica took over comes back empty, still owning its slots (as real Redis would).
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].kill();
        self.down[node] = true;
    }

    /// Starts the node again (killing it first if it runs) on the same port with the
    /// same nodes.conf, so it rejoins; a master that was failed over comes back as a
    /// replica of its successor. Returns once the port answers; `wait_ok` for the rest.
    pub fn restart(&mut self, node: usize) {
        self.nodes[node].kill();
        self.nodes[node].restart();
        self.down[node] = false;
    }

    /// SIGSTOP: the node keeps its port but answers nothing, and the others fail it
    /// over after the node timeout. `resume` undoes it.
    pub fn pause(&mut self, node: usize) {
        self.nodes[node].pause();
        self.down[node] = true;
    }

    pub fn resume(&mut self, node: usize) {
        self.nodes[node].resume();
        self.down[node] = false;
    }

    /// `CLUSTER FAILOVER` on `replica` (a graceful, manual takeover from its live
    /// master); returns once it reports role master.
    pub fn failover(&self, replica: usize) {
        let port = self.ports[replica];
        match call(port, &["CLUSTER", "FAILOVER"]) {
            Ok(Reply::Simple(_)) => {}
            other => panic!("CLUSTER FAILOVER on node {replica}: {other:?}"),
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Reply::Array(role)) = call(port, &["ROLE"]) {
                if matches!(role.first(), Some(Reply::Bulk(Some(r))) if r == "master") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {replica} not master 30 s after CLUSTER FAILOVER"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every live node says cluster_state:ok, all of them agree on who
    /// serves each of the 16384 slots and who replicates whom, every slot is served by
    /// a live master, every live node serves slots or replicates, none is flagged
    /// failing, and every live replica is linked to its master. Returns
    /// how long that took; panics after `timeout` with what was still wrong.
    pub fn wait_ok(&self, timeout: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            let problem = match self.check() {
                Ok(()) => return t0.elapsed(),
                Err(e) => e,
            };
            assert!(
                t0.elapsed() < timeout,
                "redis cluster not ok after {timeout:?}: {problem} (logs in {})",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis-cli -c -p PORT args...` against `node` (redirections followed); its
    /// output, trimmed.
    pub fn cli(&self, node: usize, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &self.ports[node].to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn check(&self) -> Result<(), String> {
        // (asked node, slot owners, each node's master or None) from the first view
        type Picture = (Vec<Option<usize>>, Vec<Option<usize>>);
        let mut agreed: Option<(usize, Picture)> = None;
        for i in (0..NODES).filter(|&i| !self.down[i]) {
            let port = self.ports[i];
            let info = text(port, &["CLUSTER", "INFO"])?;
            if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                return Err(format!("node {i}: not cluster_state:ok"));
            }
            let view = parse_nodes(&text(port, &["CLUSTER", "NODES"])?);
            let mut owner = vec![None; SLOTS];
            for n in view.iter().filter(|n| n.is_master()) {
                for &(a, b) in &n.slots {
                    for s in a..=b {
                        owner[s as usize] = self.index(n.port);
                    }
                }
            }
            if let Some(s) = owner.iter().position(|o| o.is_none()) {
                return Err(format!("node {i}: slot {s} has no master"));
            }
            if let Some(s) = owner.iter().position(|o| self.down[o.unwrap()]) {
                return Err(format!(
                    "node {i}: slot {s} still on node {} (down)",
                    owner[s].unwrap()
                ));
            }
            let mut master_of = vec![None; NODES];
            for n in &view {
                let Some(k) = self.index(n.port) else {
                    return Err(format!("node {i}: unknown node {n:?}"));
                };
                if self.down[k] {
                    continue;
                }
                if n.flags.iter().any(|f| f == "fail" || f == "fail?") {
                    return Err(format!("node {i}: live node {k} flagged failing"));
                }
                // right after create (or a restart) a node still sees others as
                // slotless masters until the news of their role reaches it
                if n.is_master() && n.slots.is_empty() {
                    return Err(format!("node {i}: node {k} seen as a master without slots"));
                }
                if !n.is_master() {
                    let m = view.iter().find(|m| m.id == n.master_id);
                    master_of[k] =
                        Some(m.and_then(|m| self.index(m.port)).ok_or_else(|| {
                            format!("node {i}: replica {k} of an unknown master")
                        })?);
                }
            }
            match &agreed {
                None => agreed = Some((i, (owner, master_of))),
                Some((j, first)) if *first != (owner, master_of) => {
                    return Err(format!("nodes {j} and {i} see different topologies"))
                }
                Some(_) => {}
            }
            let me = view.iter().find(|n| n.flags.iter().any(|f| f == "myself"));
            if me.is_some_and(|n| n.flags.iter().any(|f| f == "slave")) {
                let repl = text(port, &["INFO", "replication"])?;
                if !repl.lines().any(|l| l.trim() == "master_link_status:up") {
                    return Err(format!("node {i}: replica not linked to its master"));
                }
            }
        }
        if agreed.is_none() {
            return Err("every node is down".into());
        }
        Ok(())
    }

    fn view_from_any(&self) -> Vec<NodeLine> {
        let mut last = String::from("every node is down");
        for i in (0..NODES).filter(|&i| !self.down[i]) {
            match text(self.ports[i], &["CLUSTER", "NODES"]) {
                Ok(t) => return parse_nodes(&t),
                Err(e) => last = e,
            }
        }
        panic!("CLUSTER NODES: {last}");
    }

    fn index(&self, port: u16) -> Option<usize> {
        self.ports.iter().position(|&p| p == port)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if std::thread::panicking() {
            eprintln!("redis cluster logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        for p in &self.reserved {
            taken.remove(p);
        }
    }
}

/// Ports handed out by this test process and not yet given back.
static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `n` distinct free ports in 12000..20000: below the ephemeral range, so an outgoing
/// connection cannot take a killed node's port before its restart, and below the
/// 20000.. ports of `scripts/services`, whose stopped services keep theirs.
fn private_ports(n: usize) -> Vec<u16> {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ (u64::from(std::process::id()) << 32)
        | 1;
    let mut out = Vec::new();
    for _ in 0..100_000 {
        if out.len() == n {
            break;
        }
        // xorshift64: no rand dependency for a port lottery
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let p = 12000 + (x % 8000) as u16;
        if taken.contains(&p) || TcpListener::bind(("127.0.0.1", p)).is_err() {
            continue;
        }
        taken.insert(p);
        out.push(p);
    }
    assert_eq!(out.len(), n, "no {n} free ports in 12000..20000");
    out
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct NodeLine {
    id: String,
    port: u16,
    flags: Vec<String>,
    master_id: String,
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn is_master(&self) -> bool {
        self.flags.iter().any(|f| f == "master")
    }
}

/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link>
/// <slot>...`; slots being migrated (`[slot->-id]`) are left out.
fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let addr = f[1].split(['@', ',']).next()?;
            let port = addr.rsplit_once(':')?.1.parse().ok()?;
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|a| (a, a)),
                })
                .collect();
            Some(NodeLine {
                id: f[0].to_string(),
                port,
                flags: f[2].split(',').map(String::from).collect(),
                master_id: f[3].to_string(),
                slots,
            })
        })
        .collect()
}

/// Just enough RESP to ask a node things with timeouts (redis-cli would wait forever
/// on a paused node).
#[derive(Debug)]
enum Reply {
    Simple(String),
    Error(String),
    Int(#[allow(dead_code)] i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

fn call(port: u16, args: &[&str]) -> Result<Reply, String> {
    let what = |e: io::Error| format!("port {port}: {}: {e}", args.join(" "));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(what)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(what)?;
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(what)?;
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    (&s).write_all(&req).map_err(what)?;
    read_reply(&mut BufReader::new(&s)).map_err(what)
}

/// A bulk or simple string reply; an error reply becomes Err.
fn text(port: u16, args: &[&str]) -> Result<String, String> {
    match call(port, args)? {
        Reply::Bulk(Some(s)) | Reply::Simple(s) => Ok(s),
        Reply::Error(e) => Err(format!("port {port}: {}: {e}", args.join(" "))),
        other => Err(format!("port {port}: {}: {other:?}", args.join(" "))),
    }
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("reply {line:?}"));
    let (kind, rest) = (line.get(..1).ok_or_else(bad)?, &line[1..]);
    let num = || rest.parse::<i64>().map_err(|_| bad());
    Ok(match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(num()?),
        "$" => match usize::try_from(num()?) {
            Err(_) => Reply::Bulk(None),
            Ok(n) => {
                let mut buf = vec![0; n + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n);
                Reply::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
        },
        "*" => match usize::try_from(num()?) {
            Err(_) => Reply::Array(Vec::new()),
            Ok(n) => Reply::Array((0..n).map(|_| read_reply(r)).collect::<Result<_, _>>()?),
        },
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes() {
        let text = "\
a 127.0.0.1:21004@21014 slave b 0 1 3 connected
b 127.0.0.1:21003@21013 master - 0 1 3 connected 10923-16383
c 127.0.0.1:21001@21011,host myself,master - 0 0 1 connected 0-5460 5462 [5461->-b]
d 127.0.0.1:21002@21012 master,fail - 0 1 2 disconnected
";
        let v = parse_nodes(text);
        assert_eq!(v.len(), 4);
        assert_eq!((v[0].port, v[0].master_id.as_str()), (21004, "b"));
        assert!(!v[0].is_master() && v[1].is_master() && v[2].is_master());
        assert_eq!(v[1].slots, vec![(10923, 16383)]);
        assert_eq!(v[2].slots, vec![(0, 5460), (5462, 5462)]);
        assert_eq!(v[2].port, 21001);
        assert!(v[3].flags.contains(&"fail".to_string()) && v[3].slots.is_empty());
    }

    #[test]
    fn reads_resp() {
        let mut r = &b"*3\r\n$6\r\nmaster\r\n:7\r\n*-1\r\n+OK\r\n-ERR no\r\n$-1\r\n"[..];
        match read_reply(&mut r).unwrap() {
            Reply::Array(a) => {
                assert!(matches!(&a[0], Reply::Bulk(Some(s)) if s == "master"));
                assert!(matches!(a[1], Reply::Int(7)));
                assert!(matches!(&a[2], Reply::Array(x) if x.is_empty()));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(read_reply(&mut r).unwrap(), Reply::Simple(s) if s == "OK"));
        assert!(matches!(read_reply(&mut r).unwrap(), Reply::Error(s) if s == "ERR no"));
        assert!(matches!(read_reply(&mut r).unwrap(), Reply::Bulk(None)));
    }
}
