//! Seed 003 (Go/Gin, `internal/controller`): every JSON answer says
//! `application/json; charset=utf-8`, and timestamps read as Go's `time.RFC3339Nano`.

use std::time::Duration;

use super::*;

const GIN_JSON: &str = "application/json; charset=utf-8";

/// RFC 3339 in UTC as Go writes it: a fraction, when there is one, never ends in 0.
fn go_rfc3339nano(s: &str) -> bool {
    let Some(rest) = s.strip_suffix('Z') else {
        return false;
    };
    let (secs, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let shape_ok = secs.len() == 19 && secs.as_bytes()[10] == b'T';
    let frac_ok = frac.is_empty()
        || (frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()) && !frac.ends_with('0'));
    shape_ok && frac_ok && time_parses(s)
}

fn time_parses(s: &str) -> bool {
    // A loose parse: digits where RFC 3339 puts them.
    s[..19].bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    })
}

async fn contract(cfg: floodgate_core::Config) {
    let node = started(cfg).await;
    let http = reqwest::Client::new();
    let token =
        floodgate_todos::mint_token("compat-secret", "compat-user", Duration::from_secs(600))
            .expect("token");

    // The list, cached bytes included, with Gin's Content-Type (`c.JSON`).
    let r = call(http.get(url(&node, "/todos"))).await;
    assert_eq!((r.0, r.1.as_str()), (200, GIN_JSON), "{r:?}");
    let r = call(http.get(url(&node, "/todos"))).await;
    assert_eq!((r.0, r.1.as_str()), (200, GIN_JSON), "cached: {r:?}");
    // A write without a token: `401 {"error":"Unauthorized"}`.
    let r = call(
        http.post(url(&node, "/todos"))
            .json(&serde_json::json!({"title": "x"})),
    )
    .await;
    assert_eq!(
        (r.0, r.1.as_str(), r.2.as_str()),
        (401, GIN_JSON, r#"{"error":"Unauthorized"}"#)
    );

    let mut ids = Vec::new();
    for i in 0..5 {
        let r = call(
            http.post(url(&node, "/todos"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"title": format!("compat {i}")})),
        )
        .await;
        assert_eq!((r.0, r.1.as_str()), (202, GIN_JSON), "{r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.2).unwrap();
        assert_eq!(v["message"], "Todo creation queued");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Applied asynchronously: wait until every one reads back (`GET /todos/{id}` is
    // floodgate's; the seed has only the list).
    for id in &ids {
        let one = url(&node, &format!("/todos/{id}"));
        let found = until_ok(Duration::from_secs(20), || http.get(&one)).await;
        assert!(found, "todo {id} never applied");
        let r = call(http.get(&one)).await;
        assert_eq!(r.1, GIN_JSON);
        let v: serde_json::Value = serde_json::from_str(&r.2).unwrap();
        for field in ["created_at", "updated_at"] {
            let stamp = v[field].as_str().unwrap();
            assert!(
                go_rfc3339nano(stamp),
                "{field} {stamp:?} is not as Go writes it"
            );
        }
    }
    let listed = eventually(Duration::from_secs(5), || async {
        let r = call(http.get(url(&node, "/todos"))).await;
        let v: serde_json::Value = serde_json::from_str(&r.2).unwrap();
        r.1 == GIN_JSON && v.as_array().is_some_and(|a| a.len() >= ids.len())
    })
    .await;
    assert!(listed, "the list never showed the new todos");
    let r = call(http.get(url(&node, "/todos"))).await;
    let v: serde_json::Value = serde_json::from_str(&r.2).unwrap();
    for t in v.as_array().unwrap() {
        assert!(go_rfc3339nano(t["created_at"].as_str().unwrap()), "{t}");
    }
    node.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todos_wire_contract_on_sqlite() {
    let dir = TempDir::new();
    contract(all_services_config(&dir, "compat-secret")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todos_wire_contract_on_postgres() {
    let Ok(db) = std::env::var("FLOODGATE_TEST_DATABASE_URL") else {
        skip("FLOODGATE_TEST_DATABASE_URL");
        return;
    };
    let dir = TempDir::new();
    let mut cfg = all_services_config(&dir, "compat-secret");
    cfg.database_url = Some(db);
    contract(cfg).await;
}
