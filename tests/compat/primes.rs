//! Seed 002 (FastAPI, `api/main.py`): `POST /generate?n=` and `GET /status/{id}`.

use std::time::Duration;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primes_wire_contract() {
    let dir = TempDir::new();
    let node = embedded(&dir).await;
    let http = reqwest::Client::new();
    let generate = |q: &str| http.post(url(&node, &format!("/generate{q}")));

    // FastAPI's 422: members in its order, the last of a repeated parameter counts.
    let r = call(generate("?n=10&n=abc")).await;
    assert_eq!(
        (r.0, r.1.as_str(), r.2.as_str()),
        (
            422,
            "application/json",
            r#"{"detail":[{"type":"int_parsing","loc":["query","n"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"}]}"#
        )
    );
    let r = call(generate("")).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            422,
            r#"{"detail":[{"type":"missing","loc":["query","n"],"msg":"Field required","input":null}]}"#
        )
    );
    let r = call(generate("?n=0")).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (400, r#"{"detail":"n must be a positive integer"}"#)
    );

    // `?n=abc&n=10` is n=10: accepted, then complete with the first n primes.
    let r = call(generate("?n=abc&n=10")).await;
    assert_eq!(r.0, 200, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.2).unwrap();
    let id = v["request_id"].as_str().expect("request_id").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let status = url(&node, &format!("/status/{id}"));
    let mut last = String::new();
    for _ in 0..100 {
        last = get_text(&http, &status).await;
        if last.starts_with(r#"{"status":"complete""#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The seed's task returns the first n primes.
    assert_eq!(
        last,
        r#"{"status":"complete","result":[2,3,5,7,11,13,17,19,23,29]}"#
    );
    node.shutdown.cancel();
}
