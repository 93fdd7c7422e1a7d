//! Seed 004 (FastAPI, `src/main.py`, `src/security.py`, `src/storage.py`).

use super::*;

const NUMBER: &str = "/abacus/number";
const SUM: &str = "/abacus/sum";

fn post(
    http: &reqwest::Client,
    node: &floodgate::Running,
    key: &str,
    ct: Option<&str>,
    body: &'static str,
) -> reqwest::RequestBuilder {
    let mut b = http
        .post(url(node, NUMBER))
        .header("x-api-key", "k1")
        .header("idempotency-key", key)
        .body(body);
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abacus_wire_contract() {
    let dir = TempDir::new();
    let node = embedded(&dir).await;
    let http = reqwest::Client::new();
    let json = Some("application/json");

    // Applied: the seed's exact bytes.
    let r = call(post(&http, &node, "a1", json, r#"{"number": 5}"#)).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            200,
            r#"{"message":"Number added successfully.","current_sum":5}"#
        )
    );
    // FastAPI parses a body sent without any Content-Type as JSON.
    let r = call(post(&http, &node, "a2", None, r#"{"number": 1}"#)).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            200,
            r#"{"message":"Number added successfully.","current_sum":6}"#
        )
    );

    // Another Content-Type: 400, nothing applied (POST and PUT).
    let r = call(post(
        &http,
        &node,
        "c1",
        Some("text/plain"),
        r#"{"number": 5}"#,
    ))
    .await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            400,
            r#"{"message":"Content-Type must be application/json.","errors":[{"field":"body","message":"Input should be a valid dictionary or object to extract fields from","type":"model_attributes_type"}]}"#
        )
    );
    let r = call(
        http.put(url(&node, SUM))
            .header("x-api-key", "k1")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("number=1"),
    )
    .await;
    assert_eq!(r.0, 400, "{r:?}");
    assert!(
        r.2.starts_with(r#"{"message":"Content-Type must be application/json.","#),
        "{r:?}"
    );

    // The validator's own texts, in the seed's shape.
    for (body, text) in [
        (r#"{"number": null}"#, "Number is required."),
        (
            r#"{"number": true}"#,
            "Value must be an integer, not boolean.",
        ),
        (r#"{"number": 1.5}"#, "Value must be a 64-bit integer."),
        (r#"{"number": "5"}"#, "Value must be a 64-bit integer."),
        (
            r#"{"number": 9223372036854775808}"#,
            "Value must be within signed 64-bit integer range.",
        ),
    ] {
        let r = call(post(&http, &node, "v", json, body)).await;
        let want = format!(
            r#"{{"message":"{text}","errors":[{{"field":"number","message":"{text}","type":"value_error"}}]}}"#
        );
        assert_eq!((r.0, r.2.as_str()), (400, want.as_str()), "{body}");
    }
    let r = call(post(&http, &node, "v", json, "{}")).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            400,
            r#"{"message":"Field required","errors":[{"field":"number","message":"Field required","type":"missing"}]}"#
        )
    );
    let r = call(post(&http, &node, "v", json, "")).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            400,
            r#"{"message":"Request body is required.","errors":[{"field":"body","message":"Field required","type":"missing"}]}"#
        )
    );
    let r = call(post(&http, &node, "v", json, "{oops")).await;
    assert_eq!(r.0, 400);
    let v: serde_json::Value = serde_json::from_str(&r.2).unwrap();
    assert_eq!(v["message"], "Invalid JSON payload.");
    assert_eq!(v["errors"][0]["type"], "json_invalid");

    // Same key, other body: 409 with the seed's words; same body: the first answer again.
    let r = call(post(&http, &node, "a1", json, r#"{"number": 6}"#)).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            409,
            r#"{"detail":"Idempotency key conflict: request payload differs from original request."}"#
        )
    );
    let r = call(post(&http, &node, "a1", json, r#"{"number": 5}"#)).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            200,
            r#"{"message":"Number added successfully.","current_sum":5}"#
        )
    );

    // Keys longer than 200 characters (after trimming).
    let long = "k".repeat(201);
    let r = call(
        http.post(url(&node, NUMBER))
            .header("x-api-key", "k1")
            .header("idempotency-key", long.as_str())
            .header("content-type", "application/json")
            .body(r#"{"number": 1}"#),
    )
    .await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (400, r#"{"detail":"Idempotency key is too long."}"#)
    );

    // Overflow and underflow: 400 with the seed's detail, the sum untouched.
    let put = |n: i64| {
        http.put(url(&node, SUM))
            .header("x-api-key", "k1")
            .header("content-type", "application/json")
            .body(format!(r#"{{"number": {n}}}"#))
    };
    let r = call(put(i64::MAX)).await;
    assert_eq!(
        r.2,
        format!(
            r#"{{"message":"Sum reset successfully.","new_sum":{}}}"#,
            i64::MAX
        )
    );
    let r = call(post(&http, &node, "o1", json, r#"{"number": 1}"#)).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            400,
            r#"{"detail":"Integer overflow: The resulting sum would exceed the 64-bit integer limit."}"#
        )
    );
    put(i64::MIN).send().await.unwrap();
    let r = call(post(&http, &node, "u1", json, r#"{"number": -1}"#)).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (
            400,
            r#"{"detail":"Integer underflow: The resulting sum would be less than the 64-bit integer limit."}"#
        )
    );
    let r = call(http.get(url(&node, SUM)).header("x-api-key", "k1")).await;
    assert_eq!(r.2, format!(r#"{{"current_sum":{}}}"#, i64::MIN));

    // Auth, as the seed words it.
    let r = call(http.get(url(&node, SUM))).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (401, r#"{"detail":"Missing API key."}"#)
    );
    let r = call(http.get(url(&node, SUM)).header("x-api-key", "nope")).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (403, r#"{"detail":"Invalid API key."}"#)
    );
    node.shutdown.cancel();
}

/// 429 `{"detail":"Rate limit exceeded."}` with a Retry-After: the seconds until the window
/// frees (kept: the seed always sends the whole window), so never more than the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abacus_rate_limit_answers_429_with_retry_after() {
    let dir = TempDir::new();
    let mut cfg = all_services_config(&dir, "compat-secret");
    cfg.settings_mut::<floodgate_abacus::Settings>()
        .rate_limit_requests = 2;
    cfg.settings_mut::<floodgate_abacus::Settings>()
        .rate_limit_window = std::time::Duration::from_secs(30);
    let node = started(cfg).await;
    let http = reqwest::Client::new();
    let get = || http.get(url(&node, SUM)).header("x-api-key", "k1").send();
    assert_eq!(get().await.unwrap().status(), 200);
    assert_eq!(get().await.unwrap().status(), 200);
    let r = get().await.unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    let r = read(r).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (429, r#"{"detail":"Rate limit exceeded."}"#)
    );
    node.shutdown.cancel();
}
