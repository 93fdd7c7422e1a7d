//! Seed processes and floodgate nodes side by side during a rolling switch (issue 22):
//! what one side's worker does with the other side's messages, and what is not shared.
//! Each test plays the seed's side as the seed's code does it.

use std::time::Duration;

use floodgate_bus::{Outgoing, SharedBus};
use floodgate_db::Db;
use floodgate_store::Kv;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::*;

async fn publish(bus: &SharedBus, topic: &str, key: Option<&[u8]>, payload: &str) {
    bus.publish(Outgoing {
        topic,
        key,
        payload: payload.as_bytes(),
        headers: &[],
    })
    .await
    .expect("publish");
}

/// Seed 000's `KafkaManager.get_gift_code`: `{"action","correlation_id"}` on `tasks`, no
/// `reply_to`, the answer read from `results` in a group of its own. floodgate's worker
/// answers it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floodgate_worker_answers_the_seeds_gift_code_requests() {
    let dir = TempDir::new();
    let node = started(embedded_config(&dir)).await;
    let bus = node.ctx.backends.bus.clone();
    let cfg = &node.ctx.config;
    let group = format!(
        "rps-server-results-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut results = bus
        .subscribe(
            &cfg.settings::<floodgate_giftcodes::Settings>()
                .results_topic,
            &group,
        )
        .await
        .expect("subscribe");
    let mut asked = Vec::new();
    for _ in 0..5 {
        let id = uuid::Uuid::new_v4().to_string();
        let task = serde_json::json!({"action": "get_gift_code", "correlation_id": id});
        publish(
            &bus,
            &cfg.settings::<floodgate_giftcodes::Settings>().tasks_topic,
            None,
            &task.to_string(),
        )
        .await;
        asked.push(id);
    }
    let mut answered = Vec::new();
    while answered.len() < asked.len() {
        let m = tokio::time::timeout(Duration::from_secs(10), results.recv())
            .await
            .expect("a reply within 10 s")
            .expect("recv");
        let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
        let id = v["correlation_id"].as_str().unwrap_or_default().to_string();
        if asked.contains(&id) {
            assert!(
                v["result"].as_str().unwrap_or("").starts_with("GIFT-"),
                "{v}"
            );
            answered.push(id);
        }
        let _ = results.commit(&m).await;
    }
    stop_any(node).await;
}

/// Seed 003's worker (`internal/worker/worker.go`, group `todo-workers`): one command at a
/// time, `repository.Create` without ON CONFLICT and stamped `time.Now()`, errors logged
/// and the message committed anyway.
/// Returns `(action, id, applied without error)` for every command it took.
async fn seed_todo_worker(
    bus: SharedBus,
    topic: String,
    db: Db,
    stop: CancellationToken,
) -> Vec<(String, String, bool)> {
    let mut consumer = bus
        .subscribe(&topic, "todo-workers")
        .await
        .expect("subscribe");
    let mut seen = Vec::new();
    while let Some(m) = crate::next_message(&mut consumer, &stop).await {
        let c: serde_json::Value = serde_json::from_slice(&m.payload).expect("command");
        let s = |f: &str| c[f].as_str().unwrap_or("").to_string();
        let r = match c["action"].as_str() {
            Some("create") => sqlx::query(
                "INSERT INTO todos (id, title, description, completed, user_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, NOW(), NOW())",
            )
            .bind(s("id"))
            .bind(s("title"))
            .bind(s("description"))
            .bind(c["completed"].as_bool().unwrap_or(false))
            .bind(s("user_id"))
            .execute(db.pool())
            .await,
            Some("update") => sqlx::query(
                "UPDATE todos SET title = COALESCE(NULLIF($1,''), title), description = COALESCE(NULLIF($2,''), description),
                 completed = COALESCE($3, completed), updated_at = NOW() WHERE id = $4 AND user_id = $5",
            )
            .bind(s("title"))
            .bind(s("description"))
            .bind(c["completed"].as_bool())
            .bind(s("id"))
            .bind(s("user_id"))
            .execute(db.pool())
            .await,
            Some("delete") => sqlx::query("DELETE FROM todos WHERE id = $1 AND user_id = $2")
                .bind(s("id"))
                .bind(s("user_id"))
                .execute(db.pool())
                .await,
            _ => continue,
        };
        seen.push((s("action"), s("id"), r.is_ok()));
        let _ = consumer.commit(&m).await;
    }
    let _ = consumer.close().await;
    seen
}

/// On seed 003's table: floodgate's worker applies the seed's own commands (no
/// `command_id`, nanosecond `requested_at`); with the seed's worker on the same topic both
/// apply every command, and the table still ends as one write would leave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn todo_workers_of_both_sides_on_one_topic() {
    let Some(admin) = floodgate_testkit::env_or_skip("FLOODGATE_TEST_DATABASE_URL") else {
        return;
    };
    let db_url = floodgate_testkit::fresh_pg_database(&admin).await;
    let db = Db::connect(Some(&db_url)).await.expect("db");
    sqlx::raw_sql(super::switch_todos::SEED_SCHEMA)
        .execute(db.pool())
        .await
        .expect("seed schema");
    let dir = TempDir::new();
    let mut cfg = all_services_config(&dir, "compat-secret");
    cfg.database_url = Some(db_url);
    let node = started(cfg).await;
    let bus = node.ctx.backends.bus.clone();
    let topic = node
        .ctx
        .config
        .settings::<floodgate_todos::Settings>()
        .topic
        .clone();
    let http = reqwest::Client::new();
    let exists = |id: String| {
        let (http, u) = (http.clone(), url(&node, &format!("/todos/{id}")));
        async move { http.get(&u).send().await.is_ok_and(|r| r.status() == 200) }
    };

    // The seed's producer (`queue.PublishTodoCommand`): key `user:action`, Go's JSON.
    let seed_id = uuid::Uuid::new_v4().to_string();
    let cmd = serde_json::json!({"action": "create", "id": seed_id, "title": "from the seed",
        "user_id": "seed-user", "requested_at": "2026-12-03T16:00:00.123456789Z"});
    publish(&bus, &topic, Some(b"seed-user:create"), &cmd.to_string()).await;
    let applied = eventually(Duration::from_secs(20), || exists(seed_id.clone())).await;
    assert!(
        applied,
        "floodgate's worker never applied the seed's command"
    );
    let v = send_json(http.get(url(&node, &format!("/todos/{seed_id}")))).await;
    assert_eq!(v["created_at"], "2026-12-03T16:00:00.123456Z", "{v}");

    // Now the seed's worker joins the topic too.
    let stop = CancellationToken::new();
    let seed = tokio::spawn(seed_todo_worker(
        bus.clone(),
        topic.clone(),
        db.clone(),
        stop.clone(),
    ));
    let token =
        floodgate_todos::mint_token("compat-secret", "both", Duration::from_secs(600)).unwrap();
    let id = crate::create_todo(
        &http,
        &node,
        &token,
        serde_json::json!({"title": "twice applied"}),
    )
    .await;
    assert!(eventually(Duration::from_secs(20), || exists(id.clone())).await);
    let gone = call(
        http.delete(url(&node, &format!("/todos/{id}")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(gone.0, 202);
    let deleted = eventually(Duration::from_secs(20), || {
        let e = exists(id.clone());
        async move { !e.await }
    })
    .await;
    assert!(deleted, "delete never applied");
    // Let the seed's worker catch up, then count: one create, one delete, whoever won.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let seen = seed.await.expect("seed worker");
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM todos WHERE id = $1")
        .bind(&id)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // Both workers took both commands: the seed's worker saw the create and the delete
    // floodgate's worker also applied (one of the two inserts found the row there: the
    // seed's fails on the primary key, floodgate's ON CONFLICT makes it a no-op).
    let actions: Vec<&str> = seen
        .iter()
        .filter(|(_, i, _)| *i == id)
        .map(|(a, _, _)| a.as_str())
        .collect();
    assert_eq!(actions, ["create", "delete"], "{seen:?}");
    stop_any(node).await;
}

/// Seed 000 counts requests in flight in Redis at `RATE_LIMIT_COUNTER`; floodgate keeps
/// leases of its own. Neither sees the other's: side by side, each admits its full
/// RATE_LIMIT_CAPACITY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_in_flight_counter_is_not_shared() {
    // The seed's nodes hold every slot.
    let Some((redis, store)) = redis_store(&[("RATE_LIMIT_COUNTER", "100")]).await else {
        return;
    };
    let dir = TempDir::new();
    let mut cfg = embedded_config(&dir);
    cfg.redis_url = Some(redis.redis_url());
    let node = started(cfg).await;
    let http = reqwest::Client::new();
    let r = call(http.post(url(&node, "/queue"))).await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(
        store.get("RATE_LIMIT_COUNTER").await.unwrap().as_deref(),
        Some(&b"100"[..]),
        "floodgate touched the seed's counter"
    );
    stop_any(node).await;
}
