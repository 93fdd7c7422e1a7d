//! The dashboard as a person sees it: headless Chromium (Debian's chromium driven by
//! playwright-core, see tests/browser/) opens /dashboard while load runs and must receive
//! live samples and draw them. A screenshot of it is kept at docs/dashboard.png.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_receives_live_samples_under_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/dashboard.mjs");
    if !root
        .join("tests/browser/node_modules/playwright-core")
        .exists()
        || !Path::new("/usr/bin/chromium").exists()
    {
        skip("chromium + tests/browser/node_modules (scripts/install-deps)");
        return;
    }
    let dir = TempDir::new();
    let node = start(embedded_config(&dir)).await;
    let base = format!("http://{}", node.addr);

    // Steady load on a cheap route while the page watches.
    let stop = tokio_util::sync::CancellationToken::new();
    let load = {
        let (stop, url) = (stop.clone(), format!("{base}/health"));
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sent = 0u64;
            while !stop.is_cancelled() {
                if http.get(&url).send().await.is_ok() {
                    sent += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            sent
        })
    };
    // FLOODGATE_UPDATE_SCREENSHOT=1 refreshes the copy kept in docs/.
    let shot = if std::env::var("FLOODGATE_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        root.join("docs/dashboard.png")
    } else {
        dir.path().join("dashboard.png")
    };
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .arg(&base)
            .arg(&shot)
            .output()
    })
    .await
    .unwrap()
    .expect("run node");
    stop.cancel();
    let sent = load.await.unwrap();
    assert!(
        out.status.success(),
        "browser run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("JSON from the browser script");
    assert!(result["samples"].as_u64().unwrap() >= 4, "{result}");
    assert_eq!(result["state"], "live", "{result}");
    assert_eq!(
        result["node"].as_str().unwrap(),
        node_id_of(&node),
        "{result}"
    );
    let rps: f64 = result["rps"]
        .as_str()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(
        rps > 0.0,
        "page showed no traffic while {sent} requests ran: {result}"
    );
    assert!(
        result["drawn"].as_u64().unwrap() > 0,
        "chart not drawn: {result}"
    );
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    node.shutdown.cancel();
}

fn node_id_of(node: &floodgate::Running) -> String {
    node.ctx.config.node_id.clone()
}
