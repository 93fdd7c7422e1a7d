//! The OpenAPI document and the Prometheus metrics (this binary owns the global recorder).

mod common;

use std::time::Duration;

use common::{config, limit_rate, Env, Req};

#[test]
fn openapi_documents_the_three_routes() {
    let doc = floodgate_abacus::openapi();
    let text = serde_json::to_value(&doc).expect("serializable");
    let paths = &text["paths"];
    assert!(paths["/abacus/sum"]["get"].is_object(), "{paths}");
    assert!(paths["/abacus/sum"]["put"].is_object(), "{paths}");
    assert!(paths["/abacus/number"]["post"].is_object(), "{paths}");
    let post = &paths["/abacus/number"]["post"];
    for status in ["200", "400", "401", "403", "409", "429", "503"] {
        assert!(post["responses"][status].is_object(), "POST lacks {status}");
    }
    assert_eq!(post["parameters"][0]["name"], "Idempotency-Key");
    let scheme = &text["components"]["securitySchemes"]["abacus_api_key"];
    assert_eq!(scheme["name"], "X-API-Key", "{scheme}");
    let schemas = &text["components"]["schemas"];
    assert!(schemas["ValidationBody"].is_object() && schemas["AddedResponse"].is_object());
}

/// The exposition line of `name` whose labels include all of `labels`.
fn find<'a>(text: &'a str, name: &str, labels: &[&str]) -> Option<&'a str> {
    text.lines().find(|l| {
        l.starts_with(&format!("{name}{{")) && labels.iter().all(|want| l.contains(want))
            || (labels.is_empty() && l.starts_with(&format!("{name} ")))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_the_seed_names_and_labels() {
    floodgate_core::metrics::install();
    let env = Env::memory();
    let node = env
        .node(config(|c| limit_rate(c, 3, Duration::from_secs(60))))
        .await;
    assert_eq!(
        node.send(Req::add(Some("m1"), r#"{"number":1}"#))
            .await
            .status,
        200
    );
    assert_eq!(node.send(Req::get()).await.status, 200);
    assert_eq!(node.send(Req::get().key(None)).await.status, 401);
    assert_eq!(node.send(Req::get().key(Some("bad"))).await.status, 403);
    assert_eq!(
        node.send(Req::reset(None, r#"{"number":2}"#)).await.status,
        200
    );
    assert_eq!(node.send(Req::get()).await.status, 429);

    let text = floodgate_core::metrics::render().expect("recorder installed");
    let expect = [
        (
            "abacus_request_total",
            vec![
                r#"endpoint="/abacus/number""#,
                r#"method="POST""#,
                r#"status="200""#,
            ],
        ),
        (
            "abacus_request_total",
            vec![
                r#"endpoint="/abacus/sum""#,
                r#"method="GET""#,
                r#"status="401""#,
            ],
        ),
        (
            "abacus_request_total",
            vec![r#"endpoint="/abacus/sum""#, r#"status="429""#],
        ),
        (
            "abacus_request_duration_seconds_bucket",
            vec![r#"endpoint="/abacus/sum""#, r#"method="PUT""#],
        ),
        (
            "abacus_redis_operations_total",
            vec![r#"operation="idempotent_apply""#, r#"result="success""#],
        ),
        (
            "abacus_redis_operations_total",
            vec![r#"operation="rate_limit""#],
        ),
        (
            "abacus_redis_operation_duration_seconds_bucket",
            vec![r#"operation="get""#],
        ),
        ("abacus_auth_failures_total", vec![r#"reason="missing""#]),
        ("abacus_auth_failures_total", vec![r#"reason="invalid""#]),
        ("abacus_rate_limit_hits_total", vec![]),
    ];
    for (name, labels) in expect {
        assert!(
            find(&text, name, &labels).is_some(),
            "no {name} {labels:?} in:\n{text}"
        );
    }
}
