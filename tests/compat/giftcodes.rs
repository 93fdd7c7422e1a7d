//! Seeds 000/001 (`main.py`, `core/kafka.py`, `kafka_worker.py`): `POST /queue` answered by
//! a worker that behaves like the seed's, which answers every request on `RESULTS_TOPIC`
//! and ignores `reply_to`.

use std::collections::HashSet;
use std::time::Duration;

use floodgate_bus::{Outgoing, SharedBus};
use floodgate_core::config::Workers;
use tokio_util::sync::CancellationToken;

use super::*;

/// The seed's `kafka_worker.py`: group `gift-service-workers` on the tasks topic, a reply
/// `{"correlation_id","result":"GIFT-<UUID>"}` on the results topic, no key, no `reply_to`.
async fn seed_worker(bus: SharedBus, tasks: String, results: String, stop: CancellationToken) {
    let mut consumer = bus
        .subscribe(&tasks, "gift-service-workers")
        .await
        .expect("seed worker subscribes");
    while let Some(m) = crate::next_message(&mut consumer, &stop).await {
        let task: serde_json::Value = serde_json::from_slice(&m.payload).expect("task json");
        let code = format!("GIFT-{}", uuid::Uuid::new_v4().to_string().to_uppercase());
        let reply = serde_json::json!({"correlation_id": task["correlation_id"], "result": code});
        let payload = reply.to_string();
        let out = Outgoing {
            topic: &results,
            key: None,
            payload: payload.as_bytes(),
            headers: &[],
        };
        while bus.publish(out.clone()).await.is_err() && !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = consumer.commit(&m).await;
    }
    let _ = consumer.close().await;
}

/// Three floodgate nodes running every worker but the gift-code one (`--workers
/// primes,todos`) next to the seed's worker: every request on every node is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seed_worker_answers_every_node() {
    let dir = TempDir::new();
    let Some(broker) = tansu(&dir) else { return };
    let Some(redis) = redis() else { return };
    let brokers = format!("127.0.0.1:{}", broker.port);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (tasks, results) = (format!("tasks-{tag}"), format!("results-{tag}"));
    let config = || {
        let mut c = embedded_config(&dir);
        c.database_url = Some(format!(
            "sqlite://{}/fg-{}.db",
            dir.path().display(),
            uuid::Uuid::new_v4().simple()
        ));
        c.kafka_brokers = Some(brokers.clone());
        c.redis_url = Some(format!("redis://127.0.0.1:{}/0", redis.port));
        let g = c.settings_mut::<floodgate_giftcodes::Settings>();
        g.tasks_topic = tasks.clone();
        g.results_topic = results.clone();
        g.timeout = Duration::from_secs(10);
        c.workers = Workers::only(&["primes", "todos"]);
        c
    };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(start(config()).await);
    }
    let bus = floodgate_bus::connect(Some(&brokers), floodgate_bus::KafkaTuning::default(), None)
        .await
        .expect("bus");
    let stop = CancellationToken::new();
    let worker = tokio::spawn(seed_worker(bus, tasks, results, stop.clone()));

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Each node's listeners join their groups first.
    for node in &nodes {
        let queue = url(node, "/queue");
        let ok = eventually(Duration::from_secs(90), || async {
            http.post(&queue)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(
            ok,
            "node {} never got a gift code from the seed worker",
            node.addr
        );
    }
    // Then every request, on every node, is answered, each with its own code.
    let requests = (0..60).map(|i| {
        let (http, queue) = (http.clone(), url(&nodes[i % 3], "/queue"));
        async move {
            let r = http.post(&queue).send().await.expect("response");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.expect("json");
            (status, body)
        }
    });
    let answers = futures::future::join_all(requests).await;
    let mut codes = HashSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        let code = body["gift_code"].as_str().expect("gift_code");
        assert!(code.starts_with("GIFT-"), "{code}");
        assert!(codes.insert(code.to_string()), "code {code} given twice");
    }
    stop.cancel();
    let _ = worker.await;
    for node in nodes {
        stop_any(node).await;
    }
}

/// No worker at all: 504 with a detail (kept; the seed answers `200 {"gift_code": null}`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_is_504_not_a_null_code() {
    let dir = TempDir::new();
    let mut cfg = embedded_config(&dir);
    cfg.workers = Workers::NONE;
    cfg.settings_mut::<floodgate_giftcodes::Settings>().timeout = Duration::from_millis(300);
    let node = started(cfg).await;
    let http = reqwest::Client::new();
    let r = call(http.post(url(&node, "/queue"))).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (504, r#"{"detail":"Timed out waiting for a gift code."}"#)
    );
    let r = call(
        http.get(url(&node, "/"))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!((r.0, r.2.as_str()), (200, r#"{"Hello":"World"}"#));
    node.shutdown.cancel();
}
