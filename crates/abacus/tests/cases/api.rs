//! Bodies, validation, overflow, auth and the body limit.

use serde_json::json;

use floodgate_abacus::Settings;

use crate::common::{config, Env, Req, KEY2};

pub async fn add_get_and_reset(env: Env) {
    let node = env.node(config(|_| {})).await;
    let r = node.send(Req::get()).await;
    assert_eq!((r.status, r.text.as_str()), (200, r#"{"current_sum":0}"#));

    let r = node.send(Req::add(Some("a1"), r#"{"number": 5}"#)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.text,
        r#"{"message":"Number added successfully.","current_sum":5}"#
    );
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert!(!r.replayed());
    let r = node.send(Req::add(Some("a2"), r#"{"number":-7}"#)).await;
    assert_eq!(
        r.json(),
        json!({"message": "Number added successfully.", "current_sum": -2})
    );

    // PUT takes an Idempotency-Key but does not need one.
    let r = node.send(Req::reset(None, r#"{"number":100}"#)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.text,
        r#"{"message":"Sum reset successfully.","new_sum":100}"#
    );
    assert_eq!(node.sum().await, 100);

    // Exact at the edge of the range: no float anywhere on the way.
    let near_max = (i64::MAX - 100).to_string();
    let body = format!(r#"{{"number":{near_max}}}"#);
    let r = node.send(Req::add(Some("a3"), &body)).await;
    assert_eq!(r.json()["current_sum"], json!(i64::MAX));
    assert_eq!(node.sum().await, i64::MAX);
    let r = node
        .send(Req::reset(Some("r1"), r#"{"number":-9223372036854775808}"#))
        .await;
    assert_eq!(r.json()["new_sum"], json!(i64::MIN));
    assert_eq!(node.sum().await, i64::MIN);
}

pub async fn bad_numbers_are_400(env: Env) {
    let node = env.node(config(|_| {})).await;
    node.send(Req::reset(None, r#"{"number":10}"#)).await;
    // (body, summary, field, type): the seed's words (see docs/compatibility.md).
    let not_int = "Value must be a 64-bit integer.";
    let range = "Value must be within signed 64-bit integer range.";
    let cases = [
        (r#"{"number":5.0}"#, not_int, "number", "value_error"),
        (r#"{"number":5.5}"#, not_int, "number", "value_error"),
        (r#"{"number":"5"}"#, not_int, "number", "value_error"),
        (
            r#"{"number":true}"#,
            "Value must be an integer, not boolean.",
            "number",
            "value_error",
        ),
        (
            r#"{"number":null}"#,
            "Number is required.",
            "number",
            "value_error",
        ),
        (r#"{"number":[5]}"#, not_int, "number", "value_error"),
        (r#"{}"#, "Field required", "number", "missing"),
        (r#"{"num":5}"#, "Field required", "number", "missing"),
        (
            r#"{"number":9223372036854775808}"#,
            range,
            "number",
            "value_error",
        ),
        (
            r#"{"number":123456789012345678901234567890}"#,
            range,
            "number",
            "value_error",
        ),
        (
            r#"{"number":-9223372036854775809}"#,
            range,
            "number",
            "value_error",
        ),
        ("not json", "Invalid JSON payload.", "1", "json_invalid"),
        (
            r#"{"number":5}{}"#,
            "Invalid JSON payload.",
            "12",
            "json_invalid",
        ),
        (
            "[5]",
            "Invalid request payload.",
            "body",
            "model_attributes_type",
        ),
        ("", "Request body is required.", "body", "missing"),
        ("null", "Request body is required.", "body", "missing"),
    ];
    for (i, (body, summary, field, kind)) in cases.into_iter().enumerate() {
        let key = format!("bad-{i}");
        for req in [Req::add(Some(&key), body), Req::reset(Some(&key), body)] {
            let r = node.send(req).await;
            assert_eq!(r.status, 400, "{body}: {r:?}");
            let v = r.json();
            assert_eq!(v["message"], summary, "{body}: {v}");
            assert_eq!(v["errors"][0]["field"], field, "{body}: {v}");
            assert_eq!(v["errors"][0]["type"], kind, "{body}: {v}");
            assert!(v["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
    }
    assert_eq!(node.sum().await, 10);
    // A rejected request left nothing behind under its key.
    let r = node.send(Req::add(Some("bad-0"), r#"{"number":1}"#)).await;
    assert_eq!((r.status, r.replayed()), (200, false), "{r:?}");
    // Extra members are ignored.
    let r = node
        .send(Req::add(
            Some("extra"),
            r#"{"note":"hi","number":2,"n":[1,{"a":null}]}"#,
        ))
        .await;
    assert_eq!(r.json()["current_sum"], 13);
}

const OVERFLOW: &str =
    r#"{"detail":"Integer overflow: The resulting sum would exceed the 64-bit integer limit."}"#;
const UNDERFLOW: &str = r#"{"detail":"Integer underflow: The resulting sum would be less than the 64-bit integer limit."}"#;

pub async fn overflow_is_400_and_changes_nothing(env: Env) {
    let node = env.node(config(|_| {})).await;
    let max_minus_1 = (i64::MAX - 1).to_string();
    node.send(Req::reset(None, &format!(r#"{{"number":{max_minus_1}}}"#)))
        .await;
    let r = node.send(Req::add(Some("o1"), r#"{"number":2}"#)).await;
    assert_eq!((r.status, r.text.as_str()), (400, OVERFLOW), "{r:?}");
    assert_eq!(node.sum().await, i64::MAX - 1);
    // No record was written, so the same key may carry a different body now.
    let r = node.send(Req::add(Some("o1"), r#"{"number":1}"#)).await;
    assert_eq!(r.json()["current_sum"], json!(i64::MAX));

    let min_plus_1 = (i64::MIN + 1).to_string();
    node.send(Req::reset(None, &format!(r#"{{"number":{min_plus_1}}}"#)))
        .await;
    let r = node.send(Req::add(Some("u1"), r#"{"number":-2}"#)).await;
    assert_eq!((r.status, r.text.as_str()), (400, UNDERFLOW), "{r:?}");
    assert_eq!(node.sum().await, i64::MIN + 1);

    // The same without an Idempotency-Key (plain increment).
    let lax = env
        .node(config(|c| {
            c.settings_mut::<Settings>().idempotency_required = false
        }))
        .await;
    let r = lax.send(Req::add(None, r#"{"number":-2}"#)).await;
    assert_eq!((r.status, r.text.as_str()), (400, UNDERFLOW), "{r:?}");
    assert_eq!(lax.sum().await, i64::MIN + 1);
    let r = lax.send(Req::add(None, r#"{"number":-1}"#)).await;
    assert_eq!(r.json()["current_sum"], json!(i64::MIN));
}

pub async fn auth_statuses(env: Env) {
    let node = env.node(config(|_| {})).await;
    let bodies = [
        Req::get(),
        Req::add(Some("x1"), r#"{"number":1}"#),
        Req::reset(Some("x2"), r#"{"number":1}"#),
    ];
    for req in bodies {
        for missing in [None, Some("")] {
            let r = node.send(req.key(missing)).await;
            assert_eq!(
                (r.status, r.text.as_str()),
                (401, r#"{"detail":"Missing API key."}"#)
            );
        }
        for wrong in ["nope", "KEY-ONE", "key-on", "key-onee"] {
            let r = node.send(req.key(Some(wrong))).await;
            assert_eq!(
                (r.status, r.text.as_str()),
                (403, r#"{"detail":"Invalid API key."}"#)
            );
        }
    }
    assert_eq!(node.sum().await, 0);
    let r = node
        .send(Req::add(Some("x1"), r#"{"number":3}"#).key(Some(KEY2)))
        .await;
    assert_eq!(r.status, 200, "every configured key works: {r:?}");
    assert_eq!(node.sum().await, 3);
}

pub async fn auth_off_needs_no_key(env: Env) {
    let node = env
        .node(config(|c| {
            c.settings_mut::<Settings>().auth_enabled = false
        }))
        .await;
    let r = node
        .send(Req::add(Some("f1"), r#"{"number":4}"#).key(None))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = node.send(Req::get().key(Some("anything"))).await;
    assert_eq!(r.json()["current_sum"], 4);
}

pub async fn body_over_limit_is_413(env: Env) {
    let node = env.node(config(|c| c.body_limit = 1024)).await;
    let big = format!(r#"{{"number":1,"pad":"{}"}}"#, "x".repeat(2048));
    let r = node.send(Req::add(Some("big"), &big)).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(node.sum().await, 0);
}
