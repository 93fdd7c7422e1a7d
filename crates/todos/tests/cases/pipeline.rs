//! Writes through the bus and the worker into the database and the caches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::Router;
use floodgate_bus::BusError;
use serde_json::{json, Value};

use floodgate_todos::Settings;

use crate::common::{
    call, command, create, field_of, get, put, token, wait_for_some, wait_present, wait_todo, Env,
    STALENESS,
};

fn ids_in(list: &serde_json::Value) -> Vec<String> {
    field_of(list, "id")
}

/// Publishes `user`'s create of todo `id` titled `title` and waits until it is applied
/// (`what` names the wait); the todo.
async fn publish_create(
    env: &Env,
    api: &Router,
    id: &str,
    user: &str,
    title: &str,
    what: &str,
) -> Value {
    env.publish_command("create", id, user, json!({ "title": title }))
        .await;
    wait_present(env, api, id, what).await
}

pub async fn create_update_delete_are_applied(env: Env) {
    let node = env.node();
    let api = node.router.clone();
    let id = create(&api, "alice", "first").await;
    let todo = wait_present(&env, &api, &id, "create applied").await;
    assert_eq!(todo["title"], "first");
    assert_eq!(todo["description"], "d");
    assert_eq!(todo["user_id"], "alice");
    assert_eq!(todo["completed"], false);
    let tok = token("alice");
    let uri = format!("/todos/{id}");
    let r = put(&api, &uri, &tok, r#"{"title":"second","completed":true}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let todo = wait_todo(&env, &api, &id, "update applied", |r| {
        r.status == StatusCode::OK && r.json()["title"] == "second"
    })
    .await;
    assert_eq!(todo["completed"], true);
    assert_eq!(todo["description"], "d", "untouched fields stay");
    assert!(todo["updated_at"].as_str() >= todo["created_at"].as_str());
    // The list shows it once the version moved on.
    wait_for_some(env.patience(), "list shows the update", || async {
        let list = get(&api, "/todos").await.json();
        (list.as_array()?.first()?["title"] == "second").then_some(())
    })
    .await;
    let r = call(&api, Method::DELETE, &uri, Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_todo(&env, &api, &id, "delete applied", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
    wait_for_some(env.patience(), "list forgets it", || async {
        (get(&api, "/todos").await.body.as_ref() == b"[]").then_some(())
    })
    .await;
    node.stop().await;
}

pub async fn write_reaches_every_node_within_staleness(env: Env) {
    floodgate_todos::seed(&env.backends.db, 5)
        .await
        .expect("seed");
    let (a, b) = (env.node(), env.node());
    // Let both workers join and do their start-up bump, then warm both near-caches.
    let v0 = wait_for_some(env.patience(), "workers started", || async {
        let v = env.version().await;
        (v >= 2).then_some(v)
    })
    .await;
    tokio::time::sleep(STALENESS).await;
    for n in [&a, &b] {
        assert_eq!(
            ids_in(&get(&n.router, "/todos?limit=3").await.json()).len(),
            3
        );
    }
    let id = create(&a.router, "alice", "fresh").await;
    // Applied = in the database and the version moved past v0.
    wait_for_some(env.patience(), "write applied", || async {
        let r = get(&a.router, &format!("/todos/{id}")).await;
        (r.status == StatusCode::OK && env.version().await > v0).then_some(())
    })
    .await;
    tokio::time::sleep(STALENESS).await;
    for (name, n) in [("a", &a), ("b", &b)] {
        let list = get(&n.router, "/todos?limit=3").await.json();
        assert_eq!(
            ids_in(&list)[0],
            id,
            "node {name} still serves the old list"
        );
    }
    a.stop().await;
    b.stop().await;
}

pub async fn other_users_and_missing_todos_are_not_touched(env: Env) {
    let node = env.node();
    let api = node.router.clone();
    let id = create(&api, "alice", "mine").await;
    wait_present(&env, &api, &id, "create applied").await;
    let uri = format!("/todos/{id}");
    let mallory = token("mallory");
    let r = put(&api, &uri, &mallory, r#"{"title":"hacked"}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = call(&api, Method::DELETE, &uri, Some(&mallory), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let ghost = uuid::Uuid::new_v4().to_string();
    let r = put(
        &api,
        &format!("/todos/{ghost}"),
        &mallory,
        r#"{"title":"boo"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // Alice's own update travels behind Mallory's (same key): once it shows, theirs were seen.
    let alice = token("alice");
    let r = put(&api, &uri, &alice, r#"{"completed":true}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let todo = wait_todo(&env, &api, &id, "owner's update", |r| {
        r.status == StatusCode::OK && r.json()["completed"] == true
    })
    .await;
    assert_eq!(todo["title"], "mine");
    assert_eq!(todo["user_id"], "alice");
    // A sentinel on the ghost's key: the update before it must not have created anything.
    env.publish_command("delete", &ghost, "mallory", json!({}))
        .await;
    let ghost_todo = publish_create(
        &env,
        &api,
        &ghost,
        "sentinel",
        "sentinel",
        "sentinel applied",
    )
    .await;
    assert_eq!(ghost_todo["title"], "sentinel");
    node.stop().await;
}

pub async fn redelivery_applies_nothing_twice(env: Env) {
    let node = env.node();
    let api = node.router.clone();
    // Each redelivery comes after the original was applied, so it lands in a later batch.
    let x = uuid::Uuid::new_v4().to_string();
    env.publish_command("create", &x, "alice", json!({"title": "zero"}))
        .await;
    let one = command("update", &x, "alice", json!({"title": "one"}));
    env.publish(&one).await;
    env.publish_command("update", &x, "alice", json!({"title": "two"}))
        .await;
    wait_todo(&env, &api, &x, "updates applied", |r| {
        r.status == StatusCode::OK && r.json()["title"] == "two"
    })
    .await;
    env.publish(&one).await; // redelivered: must not put "one" back
    env.publish_command("update", &x, "alice", json!({"completed": true}))
        .await;
    let todo = wait_todo(&env, &api, &x, "sentinel update", |r| {
        r.status == StatusCode::OK && r.json()["completed"] == true
    })
    .await;
    assert_eq!(todo["title"], "two");

    let y = uuid::Uuid::new_v4().to_string();
    let first = command("create", &y, "alice", json!({"title": "first"}));
    env.publish(&first).await;
    wait_present(&env, &api, &y, "create applied").await;
    env.publish_command("delete", &y, "alice", json!({})).await;
    wait_todo(&env, &api, &y, "delete applied", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
    env.publish(&first).await; // redelivered: must not resurrect it
    let todo = publish_create(&env, &api, &y, "alice", "second", "second create").await;
    assert_eq!(todo["title"], "second");
    node.stop().await;
}

pub async fn poison_goes_to_the_dead_letter_topic(env: Env) {
    let dlq = format!("{}.dlq", env.config.settings::<Settings>().topic);
    let mut dead = env
        .backends
        .bus
        .subscribe(&dlq, &format!("test-dlq-reader-{dlq}"))
        .await
        .expect("subscribe dlq");
    let node = env.node();
    env.publish_raw("k1", b"this is not json").await;
    // An unknown action, then a create without a title.
    let [bad_action, no_title] = ["explode", "create"]
        .map(|a| command(a, &uuid::Uuid::new_v4().to_string(), "alice", json!({})));
    env.publish(&bad_action).await;
    env.publish(&no_title).await;
    let ok = uuid::Uuid::new_v4().to_string();
    env.publish_command("create", &ok, "alice", json!({"title": "after poison"}))
        .await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = match tokio::time::timeout(env.patience(), dead.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(BusError::Unavailable(_))) => continue,
            other => panic!("no dead letter after {} of 3: {other:?}", got.len()),
        };
        let reason =
            String::from_utf8_lossy(m.header("reason").expect("reason header")).to_string();
        assert!(!reason.is_empty());
        got.push((m.payload.clone(), reason));
    }
    let payloads: Vec<&[u8]> = got.iter().map(|(p, _)| p.as_ref()).collect();
    assert!(payloads.contains(&&b"this is not json"[..]), "{got:?}");
    assert!(
        got.iter()
            .any(|(p, r)| p.as_ref() == bad_action.to_string().as_bytes() && r.contains("explode")),
        "{got:?}"
    );
    assert!(got.iter().any(|(_, r)| r.contains("title")), "{got:?}");
    // The worker went on.
    wait_todo(&env, &node.router, &ok, "command after the poison", |r| {
        r.status == StatusCode::OK
    })
    .await;
    node.stop().await;
}

/// Per todo: (next sequence number, last sequence answered 202).
type Slot = tokio::sync::Mutex<(u32, Option<u32>)>;

pub async fn concurrent_writers_keep_per_todo_order(env: Env) {
    const TODOS: usize = 100;
    const WRITERS: usize = 1000;
    let node = env.node();
    let api = node.router.clone();
    let mut ids = Vec::new();
    for i in 0..TODOS {
        ids.push(create(&api, "alice", &format!("todo {i}")).await);
    }
    let last = ids.last().expect("ids").clone();
    wait_present(&env, &api, &last, "creates applied").await;
    // Per todo, a lock orders the writers: the 202 order is the order the user observed,
    // so the final title must be the last title answered 202.
    let slots: Arc<Vec<Slot>> = Arc::new((0..TODOS).map(|_| Slot::default()).collect());
    let tok = token("alice");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (api, slots, ids, tok) = (api.clone(), slots.clone(), ids.clone(), tok.clone());
        tasks.push(tokio::spawn(async move {
            let j = w % TODOS;
            let mut slot = slots[j].lock().await;
            let seq = slot.0;
            slot.0 += 1;
            let body = json!({"title": format!("t{j}-{seq}")}).to_string();
            let r = put(&api, &format!("/todos/{}", ids[j]), &tok, &body).await;
            if r.status == StatusCode::ACCEPTED {
                slot.1 = Some(seq);
            }
            r.status
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        if t.await.expect("writer") == StatusCode::ACCEPTED {
            accepted += 1;
        }
    }
    assert_eq!(accepted, WRITERS, "every write was accepted");
    let mut expected = HashMap::new();
    for (j, slot) in slots.iter().enumerate() {
        let seq = slot.lock().await.1.expect("an accepted write");
        expected.insert(ids[j].clone(), format!("t{j}-{seq}"));
    }
    wait_for_some(
        env.patience() * 2,
        "every todo at its last accepted title",
        || async {
            let list = get(&api, "/todos").await.json();
            let rows = list.as_array()?;
            let done = rows.len() == TODOS
                && rows.iter().all(|t| {
                    let id = t["id"].as_str().unwrap_or_default();
                    expected.get(id).map(String::as_str) == t["title"].as_str()
                });
            done.then_some(())
        },
    )
    .await;
    // Give stragglers a moment: nothing may change the final state afterwards.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (id, title) in &expected {
        let r = get(&api, &format!("/todos/{id}")).await;
        assert_eq!(r.json()["title"], title.as_str());
    }
    node.stop().await;
}

/// With a shared store (Redis or Redis Cluster) every node reads the list version from it;
/// the in-process store is not shared, so the version then lives in the database.
pub async fn the_list_version_lives_in_the_shared_store(env: Env) {
    let node = env.node();
    let id = create(&node.router, "alice", "bump").await;
    wait_todo(&env, &node.router, &id, "create applied", |r| {
        r.status == StatusCode::OK
    })
    .await;
    let key =
        floodgate_todos::Keys::for_topic(&env.ctx().config.settings::<Settings>().topic).version();
    let in_store = env.backends.store.get(&key).await.expect("store answers");
    let version = env.version().await;
    assert!(version >= 1, "the applied write bumped the version");
    if env.real {
        let text = in_store.expect("the version is kept in the shared store");
        assert_eq!(
            std::str::from_utf8(&text).expect("utf8"),
            version.to_string()
        );
    } else {
        assert_eq!(in_store, None, "the in-process store holds no version");
    }
    node.stop().await;
}
