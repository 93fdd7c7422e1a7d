//! The todos service end to end through its router and workers. Every case runs on the
//! embedded backends (`embedded::*`: MemoryStore, MemoryBus, SQLite) and on the real ones
//! (`real::*`: Redis, Kafka/Tansu, PostgreSQL) when FLOODGATE_TEST_REDIS_URL,
//! FLOODGATE_TEST_KAFKA_BROKERS and FLOODGATE_TEST_DATABASE_URL are set, and again with
//! Redis Cluster (`real_cluster::*`) when FLOODGATE_TEST_REDIS_CLUSTER_URL is set too. Each case has its
//! own topic (hence its own store keys and consumer group) and database.

mod cases;
mod common;

floodgate_testkit::per_backend! {
    embedded => Some(crate::common::Env::embedded().await),
    real => crate::common::Env::real().await,
    real_cluster => crate::common::Env::real_cluster().await;
    [
        empty_list_is_an_empty_array,
        limits_are_validated_and_clamped,
        seeding_is_idempotent,
        get_one_and_not_found,
        bad_tokens_are_401,
        no_secret_means_no_writes,
        bad_bodies_are_400,
        writes_answer_202_with_the_id,
        create_update_delete_are_applied,
        write_reaches_every_node_within_staleness,
        other_users_and_missing_todos_are_not_touched,
        redelivery_applies_nothing_twice,
        poison_goes_to_the_dead_letter_topic,
        concurrent_writers_keep_per_todo_order,
        keyed_writes_apply_once,
        a_retry_after_a_503_applies_once,
        unstorable_text_is_refused_before_the_202,
        longest_accepted_text_is_stored_as_sent,
        the_list_version_lives_in_the_shared_store,
    ]
}

/// A broker that does not answer: writes are 503 with Retry-After, never 202; reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_down_is_503_with_retry_after() {
    use axum::http::{Method, StatusCode};
    use floodgate_bus::{KafkaBus, KafkaConfig};

    let mut env = common::Env::embedded().await;
    let mut cfg = KafkaConfig::new("127.0.0.1:1");
    cfg.message_timeout = std::time::Duration::from_millis(500);
    env.backends.bus = std::sync::Arc::new(KafkaBus::connect_with(cfg).expect("config"));
    let api = env.api();
    let tok = common::token("alice");
    let r = common::call(
        &api,
        Method::POST,
        "/todos",
        Some(&tok),
        Some(r#"{"title":"t"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json(),
        serde_json::json!({"error": "Service unavailable"})
    );
    assert!(r.header("retry-after").is_some());
    assert_eq!(common::get(&api, "/todos").await.status, StatusCode::OK);
}

/// A worker whose database is down applies nothing and commits nothing: once it stops, a
/// worker with a working database gets the same command and applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_commits_no_offsets() {
    use axum::http::StatusCode;

    let env = common::Env::embedded().await;
    let mut broken = env.ctx();
    broken.backends.db = floodgate_db::Db::connect(Some("postgres://x@127.0.0.1:1/x"))
        .await
        .expect("lazy pool");
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(floodgate_todos::workers(broken, stop.clone()));
    let id = uuid::Uuid::new_v4().to_string();
    env.publish(&common::command(
        "create",
        &id,
        "alice",
        serde_json::json!({"title": "survivor"}),
    ))
    .await;
    // Let the broken worker take the message and fail on it at least once.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    stop.cancel();
    worker.await.expect("worker stops");
    let node = env.node();
    let todo = common::wait_todo(&env, &node.router, &id, "redelivered command", |r| {
        r.status == StatusCode::OK
    })
    .await;
    assert_eq!(todo["title"], "survivor");
    node.stop().await;
}
