//! `Idempotency-Key` on todo writes: a retry is applied once and answered the same.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::json;

use crate::common::{
    call, get, put, request, send, token, wait_for_some, wait_present, wait_todo, Env, LostAck,
    Resp,
};

async fn keyed(
    api: &Router,
    method: Method,
    uri: &str,
    user: &str,
    key: &str,
    body: Option<&str>,
) -> Resp {
    let mut req = request(method, uri, Some(&token(user)), body);
    let key = key.parse().expect("key is a header value");
    req.headers_mut().insert("idempotency-key", key);
    send(api, req).await
}

fn unique_key(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh key (`key_what-…`), a fresh title (`title_what-…`) and a create body with it.
fn keyed_create_body(key_what: &str, title_what: &str) -> (String, String, String) {
    let title = unique_key(title_what);
    let body = json!({ "title": title }).to_string();
    (unique_key(key_what), title, body)
}

/// How many listed todos carry `title`, once the list shows `id`.
async fn listed_with_title(env: &Env, api: &Router, id: &str, title: &str) -> usize {
    wait_for_some(env.patience(), "list shows the todo", || async {
        let list = get(api, "/todos?limit=1000").await.json();
        let list = list.as_array()?.clone();
        list.iter()
            .any(|t| t["id"] == id)
            .then(|| list.iter().filter(|t| t["title"] == title).count())
    })
    .await
}

/// Sets `id`'s description to "marker" and waits until it is applied: every write queued
/// before it for the same todo (same partition) has been consumed by then.
async fn marker(env: &Env, api: &Router, user: &str, id: &str) -> serde_json::Value {
    let uri = format!("/todos/{id}");
    let body = Some(r#"{"description":"marker"}"#);
    let r = call(api, Method::PUT, &uri, Some(&token(user)), body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_todo(env, api, id, "marker applied", |r| {
        r.status == StatusCode::OK && r.json()["description"] == "marker"
    })
    .await
}

pub async fn keyed_writes_apply_once(env: Env) {
    let node = env.node();
    let api = node.router.clone();
    let (key, title, body) = keyed_create_body("create", "once");
    let first = keyed(&api, Method::POST, "/todos", "alice", &key, Some(&body)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = keyed(&api, Method::POST, "/todos", "alice", &key, Some(&body)).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{:?}", again.body);
    assert_eq!(again.body, first.body, "a retry is answered the same");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let id = first.json()["id"].as_str().expect("id").to_string();

    // The same key for another request is refused and changes nothing.
    let other = json!({"title": "something else"}).to_string();
    let r = keyed(&api, Method::POST, "/todos", "alice", &key, Some(&other)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    // Keys are per caller: bob's same key is his own write.
    let bobs = json!({"title": format!("{title} (bob)")}).to_string();
    let bob = keyed(&api, Method::POST, "/todos", "bob", &key, Some(&bobs)).await;
    assert_eq!(bob.status, StatusCode::ACCEPTED);
    assert_ne!(bob.json()["id"], first.json()["id"]);
    // A malformed key is a 400.
    let r = keyed(
        &api,
        Method::POST,
        "/todos",
        "alice",
        "has space",
        Some(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    wait_present(&env, &api, &id, "keyed create applied").await;
    assert_eq!(listed_with_title(&env, &api, &id, &title).await, 1);

    // An update retried after a later write does not undo it.
    let uri = format!("/todos/{id}");
    let key = unique_key("update");
    let rename = r#"{"title":"renamed"}"#;
    let first = keyed(&api, Method::PUT, &uri, "alice", &key, Some(rename)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let tok = token("alice");
    let later = put(&api, &uri, &tok, r#"{"title":"later"}"#).await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
    let again = keyed(&api, Method::PUT, &uri, "alice", &key, Some(rename)).await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::ACCEPTED, &first.body)
    );
    // Same todo, same partition: once the marker is applied, so is the replay.
    let todo = marker(&env, &api, "alice", &id).await;
    assert_eq!(
        todo["title"], "later",
        "the replayed update was not applied again"
    );

    let key = unique_key("delete");
    let first = keyed(&api, Method::DELETE, &uri, "alice", &key, None).await;
    let again = keyed(&api, Method::DELETE, &uri, "alice", &key, None).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::ACCEPTED, &first.body)
    );
    wait_todo(&env, &api, &id, "delete applied", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;

    // Without a key nothing changes: two posts are two todos.
    let plain = json!({"title": "plain"}).to_string();
    let a = call(&api, Method::POST, "/todos", Some(&tok), Some(&plain)).await;
    let b = call(&api, Method::POST, "/todos", Some(&tok), Some(&plain)).await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_ne!(a.json()["id"], b.json()["id"]);
    node.stop().await;
}

/// The first try reached the broker but answered 503 (its ack was lost); the client retries
/// with the same key: 202, and one todo, not two.
pub async fn a_retry_after_a_503_applies_once(mut env: Env) {
    env.backends.bus = Arc::new(LostAck {
        inner: env.backends.bus.clone(),
        lose: 1.into(),
    });
    let node = env.node();
    let api = node.router.clone();
    let (key, title, body) = keyed_create_body("lost", "lost-ack");
    let first = keyed(&api, Method::POST, "/todos", "carol", &key, Some(&body)).await;
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        first.body
    );
    let retry = keyed(&api, Method::POST, "/todos", "carol", &key, Some(&body)).await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{:?}", retry.body);
    let id = retry.json()["id"].as_str().expect("id").to_string();
    wait_present(&env, &api, &id, "retried create applied").await;
    // Both copies are on the bus; a later write to the same todo proves both were consumed.
    marker(&env, &api, "carol", &id).await;
    assert_eq!(listed_with_title(&env, &api, &id, &title).await, 1);
    node.stop().await;
}
