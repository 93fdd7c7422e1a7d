//! Unknown paths are 404 and wrong methods 405, with FastAPI's bodies, whatever the API key,
//! and they touch no service's auth, rate limit or metrics.

use std::time::Duration;

use crate::common::{all_services_config, get_with, start, url, TempDir};

const PATHS: [&str; 7] = [
    "/nope",
    "/favicon.ico",
    "/abacus/x",
    "/todos/x/y",
    "/status/",
    "/dashboard/x",
    "/abacus/sum/",
];

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_answer_without_any_service() {
    let dir = TempDir::new();
    let mut cfg = all_services_config(&dir, "s");
    cfg.settings_mut::<floodgate_abacus::Settings>()
        .rate_limit_enabled = true;
    cfg.settings_mut::<floodgate_abacus::Settings>()
        .rate_limit_requests = 3;
    cfg.settings_mut::<floodgate_abacus::Settings>()
        .rate_limit_window = Duration::from_secs(60);
    let node = start(cfg).await;
    let http = reqwest::Client::new();
    let metrics = || async {
        http.get(url(&node, "/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let auth_failures_before = metric(&metrics().await, "abacus_auth_failures_total");

    for key in [None, Some("wrong"), Some("k1")] {
        for path in PATHS {
            for method in [reqwest::Method::GET, reqwest::Method::POST] {
                let mut req = http.request(method.clone(), url(&node, path));
                if let Some(k) = key {
                    req = req.header("x-api-key", k);
                }
                let resp = req.body("{}").send().await.unwrap();
                assert_eq!(resp.status(), 404, "{method} {path} key {key:?}");
                assert_eq!(resp.headers()["content-type"], "application/json");
                assert_eq!(resp.text().await.unwrap(), r#"{"detail":"Not Found"}"#);
            }
        }
    }
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/abacus/sum", "GET,HEAD,PUT"),
        (reqwest::Method::GET, "/abacus/number", "POST"),
        (reqwest::Method::POST, "/health", "GET,HEAD"),
    ] {
        let resp = http
            .request(method.clone(), url(&node, path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
        assert_eq!(
            resp.text().await.unwrap(),
            r#"{"detail":"Method Not Allowed"}"#
        );
    }

    // The rate limit (3 a minute) was never spent on them, auth never ran, and the abacus
    // counted nothing; request metrics count them under one label.
    for _ in 0..3 {
        let r = get_with(&http, &url(&node, "/abacus/sum"), ("x-api-key", "k1")).await;
        assert_eq!(r.status(), 200);
    }
    let text = metrics().await;
    assert!(!text.contains(r#"endpoint="unmatched""#), "{text}");
    assert_eq!(
        metric(&text, "abacus_auth_failures_total"),
        auth_failures_before
    );
    assert_eq!(
        metric(
            &text,
            r#"http_requests_total{method="GET",handler="unmatched",status="404"}"#
        ),
        (PATHS.len() * 3) as f64
    );
    assert_eq!(
        metric(
            &text,
            r#"http_requests_total{method="DELETE",handler="unmatched",status="405"}"#
        ),
        1.0
    );
    let handlers: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| l.split("handler=\"").nth(1)?.split('"').next())
        .collect();
    for path in PATHS {
        assert!(
            !handlers.contains(path),
            "{path} got its own label: {handlers:?}"
        );
    }
    // The abacus itself still guards its routes.
    let r = http.get(url(&node, "/abacus/sum")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    node.shutdown.cancel();
}
