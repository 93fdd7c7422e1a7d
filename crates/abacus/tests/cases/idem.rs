//! Idempotency-Key: validation, replay, mismatch, scoping and concurrent duplicates.

use std::sync::Arc;

use floodgate_abacus::Settings;

use crate::common::{config, Env, Req, KEY2};

const BAD_KEY: &str = r#"{"detail":"Idempotency-Key must be printable ASCII."}"#;
const LONG_KEY: &str = r#"{"detail":"Idempotency key is too long."}"#;
const REQUIRED: &str = r#"{"detail":"Idempotency-Key header is required."}"#;
const CONFLICT: &str =
    r#"{"detail":"Idempotency key conflict: request payload differs from original request."}"#;

pub async fn idempotency_key_rules(env: Env) {
    let node = env.node(config(|_| {})).await;
    let r = node.send(Req::add(None, r#"{"number":1}"#)).await;
    assert_eq!((r.status, r.text.as_str()), (400, REQUIRED));
    // Trimmed as the seed trims it: blank is no key at all.
    let r = node.send(Req::add(Some("  "), r#"{"number":1}"#)).await;
    assert_eq!((r.status, r.text.as_str()), (400, REQUIRED));
    let long = "k".repeat(201);
    for (bad, want) in [(long.as_str(), LONG_KEY), ("tab\tinside", BAD_KEY)] {
        for req in [
            Req::add(Some(bad), r#"{"number":1}"#),
            Req::reset(Some(bad), r#"{"number":1}"#),
        ] {
            let r = node.send(req).await;
            assert_eq!((r.status, r.text.as_str()), (400, want), "key {bad:?}");
        }
    }
    // The body is checked before the key, as the seed does.
    let r = node.send(Req::add(Some(&long), r#"{"number":true}"#)).await;
    assert_eq!(r.json()["errors"][0]["type"], "value_error", "{r:?}");
    assert_eq!(node.sum().await, 0);
    let r = node
        .send(Req::add(Some("two words"), r#"{"number":0}"#))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let longest = "k".repeat(200);
    let r = node.send(Req::add(Some(&longest), r#"{"number":1}"#)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = node
        .send(Req::add(Some("~!@#$%^&*()_+{}|:<>?"), r#"{"number":1}"#))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Not required when configured so.
    let lax = env
        .node(config(|c| {
            c.settings_mut::<Settings>().idempotency_required = false
        }))
        .await;
    let r = lax.send(Req::add(None, r#"{"number":1}"#)).await;
    assert_eq!(r.json()["current_sum"], 3);
}

pub async fn replay_returns_the_original_response(env: Env) {
    let node = env.node(config(|_| {})).await;
    let first = node.send(Req::add(Some("r1"), r#"{"number":5}"#)).await;
    assert_eq!((first.status, first.replayed()), (200, false), "{first:?}");
    node.send(Req::add(Some("r2"), r#"{"number":7}"#)).await;

    // Same key and number, however the JSON is written: the first response, marked.
    for body in [r#"{"number":5}"#, r#"{ "note": 1, "number" : 5 }"#] {
        let again = node.send(Req::add(Some("r1"), body)).await;
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(again.text, first.text);
        assert!(again.replayed(), "{again:?}");
    }
    let r = node.send(Req::add(Some("r1"), r#"{"number":6}"#)).await;
    assert_eq!((r.status, r.text.as_str()), (409, CONFLICT));
    assert_eq!(node.sum().await, 12);

    // PUT with a key replays too.
    let reset = node.send(Req::reset(Some("p1"), r#"{"number":100}"#)).await;
    node.send(Req::add(Some("r3"), r#"{"number":1}"#)).await;
    let again = node.send(Req::reset(Some("p1"), r#"{"number":100}"#)).await;
    assert_eq!(
        (again.text.as_str(), again.replayed()),
        (reset.text.as_str(), true)
    );
    let r = node.send(Req::reset(Some("p1"), r#"{"number":99}"#)).await;
    assert_eq!((r.status, r.text.as_str()), (409, CONFLICT), "{r:?}");
    assert_eq!(node.sum().await, 101);
}

pub async fn idempotency_is_scoped_per_api_key_and_route(env: Env) {
    let node = env.node(config(|_| {})).await;
    let a = node.send(Req::add(Some("same"), r#"{"number":5}"#)).await;
    let b = node
        .send(Req::add(Some("same"), r#"{"number":5}"#).key(Some(KEY2)))
        .await;
    assert_eq!((a.replayed(), b.replayed()), (false, false));
    assert_eq!(b.json()["current_sum"], 10, "applied under each API key");
    let a2 = node.send(Req::add(Some("same"), r#"{"number":5}"#)).await;
    assert_eq!((a2.text.as_str(), a2.replayed()), (a.text.as_str(), true));
    // The same key on the other write route is a different request.
    let r = node.send(Req::reset(Some("same"), r#"{"number":1}"#)).await;
    assert_eq!((r.status, r.replayed()), (200, false), "{r:?}");
    assert_eq!(node.sum().await, 1);
}

pub async fn concurrent_duplicates_apply_once(env: Env) {
    // Fifty copies of one request at once: one applies, the rest replay it. The apply and
    // its record are one atomic step, so no copy ever sees it "in flight" (no 409).
    let node = Arc::new(env.node(config(|_| {})).await);
    let calls = (0..50).map(|_| {
        let node = node.clone();
        async move { node.send(Req::add(Some("dup"), r#"{"number":3}"#)).await }
    });
    let all = futures::future::join_all(calls).await;
    assert!(all.iter().all(|r| r.status == 200), "{all:?}");
    assert!(all.iter().all(|r| r.json()["current_sum"] == 3), "{all:?}");
    assert_eq!(all.iter().filter(|r| !r.replayed()).count(), 1);
    assert_eq!(node.sum().await, 3);
}
