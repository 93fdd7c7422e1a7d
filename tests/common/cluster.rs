//! A cluster of real `floodgate` processes on real Redis, Kafka (Tansu) and PostgreSQL,
//! with topics of its own, and the work it is given: bursts of prime jobs and todo writes
//! that must all be done. Used by the failover and broker restart tests.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use floodgate_testkit::{env_or_skip, fresh_pg_database};
use serde_json::{json, Value};

use super::{binary, free_port, TempDir};

/// Jobs and writes per burst: with 8 partitions over two members, some land on the dead
/// member's partitions (the chance that none does is 2^-16 per kind).
pub const BURST: usize = 16;
const SECRET: &str = "cluster-secret";

pub struct Cluster {
    pub dir: TempDir,
    pub env: Vec<(&'static str, String)>,
    pub http: reqwest::Client,
    token: String,
}

pub struct Proc {
    child: super::Killed,
    pub name: String,
    /// Where it serves HTTP (a worker serves probes and metrics).
    pub base: Option<String>,
}

impl Proc {
    /// Its process id (for /proc/PID/stat).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running (not exited).
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Proc {
    /// SIGKILL, and reaped: the process is gone when this returns. Panics if it was gone
    /// already (then the kill would prove nothing).
    pub fn kill9(&mut self) -> Instant {
        let early = self.child.try_wait().expect("try_wait");
        assert!(early.is_none(), "{} had exited: {early:?}", self.name);
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
        Instant::now()
    }
}

impl Cluster {
    /// On the shared services of `scripts/services`; None (skipped) when they are not set.
    pub async fn new() -> Option<Cluster> {
        let brokers = env_or_skip("FLOODGATE_TEST_KAFKA_BROKERS")?;
        Cluster::with_brokers(&brokers).await
    }

    /// On the broker at `brokers` (e.g. a test's own Tansu).
    pub async fn with_brokers(brokers: &str) -> Option<Cluster> {
        let brokers = brokers.to_string();
        let redis = env_or_skip("FLOODGATE_TEST_REDIS_URL")?;
        let pg = env_or_skip("FLOODGATE_TEST_DATABASE_URL")?;
        let db = fresh_pg_database(&pg).await;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let env = vec![
            ("REDIS_URL", redis),
            ("KAFKA_BROKERS", brokers),
            ("DATABASE_URL", db),
            ("JWT_SECRET", SECRET.to_string()),
            // Topics of this test alone, so its consumer groups are its own too.
            ("PRIMES_TOPIC", format!("failover-primes-{run}")),
            ("KAFKA_TODO_TOPIC", format!("failover-todos-{run}")),
            ("TASKS_TOPIC", format!("failover-tasks-{run}")),
            ("RESULTS_TOPIC", format!("failover-results-{run}")),
            ("FLOODGATE_LOG_FORMAT", "text".into()),
            ("RUST_LOG", "info,librdkafka=warn".into()),
        ];
        let token = floodgate_todos::mint_token(SECRET, "failover", Duration::from_secs(3600))
            .expect("token");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client");
        Some(Cluster {
            dir: TempDir::new(),
            env,
            http,
            token,
        })
    }

    pub fn spawn(&self, name: &str, args: &[&str]) -> Proc {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log");
        let mut cmd = binary();
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // A worker serves probes and metrics too (FLOODGATE_WORKER_LISTEN): on a port of its
        // own, or it exits at once.
        let port = free_port();
        cmd.env("FLOODGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("FLOODGATE_WORKER_LISTEN", format!("127.0.0.1:{port}"));
        let base = Some(format!("http://127.0.0.1:{port}"));
        Proc {
            child: super::Killed(cmd.spawn().expect("spawn floodgate")),
            name: name.to_string(),
            base,
        }
    }

    pub async fn node(&self, name: &str, args: &[&str]) -> Proc {
        let p = self.spawn(name, args);
        let base = p.base.clone().expect("a node");
        let up = super::healthy(&self.http, &base, Duration::from_secs(60)).await;
        assert!(up, "{name} never became healthy:\n{}", self.log(name));
        p
    }

    /// A node serving HTTP without workers, and its base URL.
    pub async fn api_node(&self) -> (Proc, String) {
        let api = self.node("api", &["serve", "--no-workers"]).await;
        let base = api.base.clone().expect("base");
        (api, base)
    }

    /// The bearer token todo writes carry.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The value of `var` in the processes' environment (e.g. `PRIMES_TOPIC`).
    pub fn var(&self, var: &str) -> &str {
        &self.env.iter().find(|(k, _)| *k == var).expect("set").1
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn logs(&self, procs: &[&str]) -> String {
        procs
            .iter()
            .map(|p| format!("--- {p} ---\n{}", tail(&self.log(p), 40)))
            .collect()
    }

    /// Submits `BURST` prime jobs and `BURST` todo creates through `base`; answered 200/202
    /// (retried while the node answers 503, which a 202 would never follow).
    pub async fn burst(&self, base: &str) -> Work {
        let mut work = Work::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while work.jobs.len() < BURST || work.todos.len() < BURST {
            assert!(Instant::now() < deadline, "the node refuses work: {work:?}");
            if work.jobs.len() < BURST {
                let r = self
                    .http
                    .post(format!("{base}/generate?n=2000"))
                    .send()
                    .await;
                if let Some(v) = answered(r, 200).await {
                    work.jobs.push(v["request_id"].as_str().expect("id").into());
                }
            }
            if work.todos.len() < BURST {
                let r = self
                    .http
                    .post(format!("{base}/todos"))
                    .bearer_auth(&self.token)
                    .json(&json!({"title": format!("failover {}", work.todos.len())}))
                    .send()
                    .await;
                if let Some(v) = answered(r, 202).await {
                    work.todos.push(v["id"].as_str().expect("id").into());
                }
            }
        }
        work
    }

    /// PUT /todos/{id} {"title": title} with an Idempotency-Key, so a retry (503, lost
    /// answer) is applied once.
    pub async fn retitle(&self, base: &str, id: &str, title: &str) {
        let key = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self
                .http
                .put(format!("{base}/todos/{id}"))
                .bearer_auth(&self.token)
                .header("Idempotency-Key", &key)
                .json(&json!({ "title": title }))
                .send()
                .await;
            if answered(r, 202).await.is_some() {
                return;
            }
            assert!(Instant::now() < deadline, "the node refuses to update {id}");
        }
    }

    /// Polls until each todo has its title, or `patience` passes; returns the todos whose
    /// title is still another, with the title they have.
    pub async fn titles(
        &self,
        base: &str,
        want: &[(String, String)],
        patience: Duration,
    ) -> Vec<(String, Option<String>)> {
        let deadline = Instant::now() + patience;
        loop {
            let mut wrong = Vec::new();
            for (id, title) in want {
                let v = get(&self.http, &format!("{base}/todos/{id}")).await;
                let got = v.and_then(|v| v["title"].as_str().map(String::from));
                if got.as_deref() != Some(title.as_str()) {
                    wrong.push((id.clone(), got));
                }
            }
            if wrong.is_empty() || Instant::now() >= deadline {
                return wrong;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until every job is complete and every todo is in the database, or `patience`
    /// passes; returns what is still outstanding.
    pub async fn finish(&self, base: &str, work: &Work, patience: Duration) -> Work {
        let deadline = Instant::now() + patience;
        let mut left = work.clone();
        loop {
            let mut still = Work::default();
            for id in &left.jobs {
                let v = get(&self.http, &format!("{base}/status/{id}")).await;
                if v.as_ref()
                    .map(|v| v["status"] != "complete")
                    .unwrap_or(true)
                {
                    still.jobs.push(id.clone());
                }
            }
            for id in &left.todos {
                let v = get(&self.http, &format!("{base}/todos/{id}")).await;
                if v.as_ref().map(|v| v["id"] != id.as_str()).unwrap_or(true) {
                    still.todos.push(id.clone());
                }
            }
            left = still;
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Work {
    pub jobs: Vec<String>,
    pub todos: Vec<String>,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.todos.is_empty()
    }
}

async fn answered(r: reqwest::Result<reqwest::Response>, want: u16) -> Option<Value> {
    let r = r.ok()?;
    if r.status().as_u16() != want {
        tokio::time::sleep(Duration::from_millis(50)).await;
        return None;
    }
    r.json().await.ok()
}

async fn get(http: &reqwest::Client, url: &str) -> Option<Value> {
    let r = http.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

pub fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends bursts until one is done within a few seconds and every process in `members`
/// has consumed prime jobs and todo commands: the groups have formed and each member holds
/// partitions of both topics (else killing it would prove nothing).
pub async fn warm_up(c: &Cluster, base: &str, members: &[&Proc], logs: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let work = c.burst(base).await;
        let done = c.finish(base, &work, Duration::from_secs(5)).await;
        if done.is_empty() && consumed_everywhere(c, members).await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "work never flowed before the kill\n{}",
            c.logs(logs)
        );
    }
}

/// Every process in `members` has consumed prime jobs and todo commands.
pub async fn consumed_everywhere(c: &Cluster, members: &[&Proc]) -> bool {
    for p in members {
        for var in ["PRIMES_TOPIC", "KAFKA_TODO_TOPIC"] {
            let label = format!("topic=\"{}\"", c.var(var));
            if metric(c, p, "bus_messages_consumed_total", &label).await == 0.0 {
                return false;
            }
        }
    }
    true
}

/// The sum of the samples of metric `name` on `p` whose labels contain `labels`
/// (e.g. `topic="..."`); 0 when it does not answer.
pub async fn metric(c: &Cluster, p: &Proc, name: &str, labels: &str) -> f64 {
    let base = p.base.as_deref().expect("base");
    let Ok(r) = c.http.get(format!("{base}/metrics")).send().await else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(['{', ' ']))
        })
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn no_duplicates(todos: &[String]) {
    let unique: HashSet<&String> = todos.iter().collect();
    assert_eq!(unique.len(), todos.len());
}
