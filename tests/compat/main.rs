//! The seeds' wire contracts, as their own clients, tests and workers see them (issue 16):
//! one module per seed. Each assertion is something the seed itself does; where floodgate
//! keeps a different behaviour on purpose, docs/compatibility.md says so and why.

#[path = "../support/mod.rs"]
mod support;

mod abacus;
mod giftcodes;
mod primes;
mod todos;

use support::*;

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

/// Sends `req`; status, Content-Type and body text of the answer.
async fn call(req: reqwest::RequestBuilder) -> (u16, String, String) {
    read(req.send().await.expect("send")).await
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
