//! The seeds' wire contracts, as their own clients, tests and workers see them (issue 16):
//! one module per seed. Each assertion is something the seed itself does; where floodgate
//! keeps a different behaviour on purpose, docs/compatibility.md says so and why.

#[path = "../common/mod.rs"]
mod common;

mod abacus;
mod giftcodes;
mod primes;
mod switch_abacus;
mod switch_env;
mod switch_neighbours;
mod switch_todos;
mod todos;

use common::*;

/// An embedded node (in-memory store and bus, SQLite) with API key `k1` and a JWT secret.
async fn embedded(dir: &TempDir) -> floodgate::Running {
    started(all_services_config(dir, "compat-secret")).await
}

/// A node that answers `/ready` (its database migrated).
async fn started(cfg: floodgate_core::Config) -> floodgate::Running {
    let node = start(cfg).await;
    let http = reqwest::Client::new();
    let ready = until_status(
        &http,
        &url(&node, "/ready"),
        200,
        std::time::Duration::from_secs(30),
    )
    .await;
    assert!(ready, "node never ready");
    node
}

/// Our own Redis and a store on it, holding `seed` (key, value) as a seed left it; None
/// (the test skips) without redis-server.
async fn redis_store(seed: &[(&str, &str)]) -> Option<(Process, floodgate_store::RedisStore)> {
    use floodgate_store::Kv;
    let redis = redis()?;
    let store = floodgate_store::RedisStore::connect(&redis.redis_url())
        .await
        .expect("store");
    for (key, value) in seed {
        let value = value.to_string().into();
        store.set(key, value, None).await.expect("set");
    }
    Some((redis, store))
}

/// Sends `req`; status, Content-Type and body text of the answer.
async fn call(req: reqwest::RequestBuilder) -> (u16, String, String) {
    read(req.send().await.expect("send")).await
}

/// POSTs `body` to `/todos` on `node` as `token`'s user; asserts the 202 and returns the id.
async fn create_todo(
    http: &reqwest::Client,
    node: &floodgate::Running,
    token: &str,
    body: serde_json::Value,
) -> String {
    let r = call(
        http.post(url(node, "/todos"))
            .bearer_auth(token)
            .json(&body),
    )
    .await;
    assert_eq!(r.0, 202, "{}", r.2);
    let v: serde_json::Value = serde_json::from_str(&r.2).expect("json");
    v["id"].as_str().expect("id").to_string()
}

/// The next message for a seed-style worker loop: `None` once `stop` fires or the bus
/// closes; broker trouble is waited out, as the seeds' workers do.
async fn next_message(
    consumer: &mut Box<dyn floodgate_bus::Consumer>,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<floodgate_bus::Message> {
    loop {
        let m = tokio::select! {
            _ = stop.cancelled() => return None,
            m = consumer.recv() => m,
        };
        match m {
            Ok(m) => return Some(m),
            Err(floodgate_bus::BusError::Closed) => return None,
            Err(_) => continue,
        }
    }
}

/// Status, Content-Type and body text of a response.
async fn read(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, resp.text().await.expect("body"))
}

/// The configuration a node reads from `dir/.env` holding `text` (a seed's `.env`), with no
/// process environment and no `floodgate.toml`: what a team switching over starts with.
fn seed_env(
    dir: &TempDir,
    text: &str,
) -> Result<
    (floodgate_core::Config, floodgate_core::config::Resolved),
    floodgate_core::config::ConfigError,
> {
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, text).expect("write .env");
    let opts = floodgate_core::config::LoadOptions {
        // The test's working directory (the workspace) has no floodgate.toml.
        config_file: None,
        env_file: Some(env_file),
        flags: Vec::new(),
    };
    floodgate::settings::schema().load_from(&opts, std::iter::empty())
}

/// `cfg` on an ephemeral port with a private SQLite file unless it names a database.
fn on_test_port(mut cfg: floodgate_core::Config, dir: &TempDir) -> floodgate_core::Config {
    cfg.listen = "127.0.0.1:0".parse().expect("addr");
    cfg.node_id = format!("switch-{}", uuid::Uuid::new_v4().simple());
    if cfg.database_url.as_deref() == Some(floodgate_db::DEFAULT_SQLITE_URL) {
        cfg.database_url = Some(format!("sqlite://{}/fg.db", dir.path().display()));
    }
    cfg
}
