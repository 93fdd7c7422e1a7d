//! Failover on real Redis + Tansu + PostgreSQL: `kill -9` of a `floodgate worker` process,
//! or of a whole node, while prime jobs and todo writes flow. Work on the dead member's
//! partitions must resume on the survivors within FAILOVER_BOUND; the measured time is
//! printed. Needs FLOODGATE_TEST_{REDIS_URL,KAFKA_BROKERS,DATABASE_URL}.

mod common;

use std::time::Duration;

use common::cluster::{no_duplicates, warm_up, Cluster, Proc};

/// From the kill to the last job and write of a burst sent right after it being done: the
/// dead member's partition claims expire (3 s), a survivor claims them at its next tick
/// (1 s), then the burst's own work. Measured 3.0-4.0 s.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);

/// Kills `victim`, sends a burst to `base` at once and times it until it is all done.
async fn measure_failover(c: &Cluster, victim: &mut Proc, base: &str, logs: &[&str]) -> Duration {
    let killed = victim.kill9();
    let work = c.burst(base).await;
    let left = c.finish(base, &work, Duration::from_secs(120)).await;
    let took = killed.elapsed();
    assert!(
        left.is_empty(),
        "after kill -9 of {}: never done: {left:?}\n{}",
        victim.name,
        c.logs(logs)
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_a_worker_fails_over_within_bound() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let (_api, base) = c.api_node().await;
    let mut w1 = c.spawn("worker-1", &["worker"]);
    let mut w2 = c.spawn("worker-2", &["worker"]);
    let names = ["api", "worker-1", "worker-2", "worker-3"];
    warm_up(&c, &base, &[&w1, &w2], &names).await;

    let took = measure_failover(&c, &mut w1, &base, &names).await;
    eprintln!("failover after kill -9 of a worker (survivor running): {took:?}");
    assert!(took <= FAILOVER_BOUND, "{took:?} > {FAILOVER_BOUND:?}");

    // The case: the last worker dies, a replacement starts. It must not wait for
    // the dead member's session (nor its half-done jobs) to expire.
    let killed = w2.kill9();
    let work = c.burst(&base).await;
    let _w3 = c.spawn("worker-3", &["worker"]);
    let left = c.finish(&base, &work, Duration::from_secs(120)).await;
    let took = killed.elapsed();
    assert!(left.is_empty(), "never done: {left:?}\n{}", c.logs(&names));
    eprintln!("failover after kill -9 of the last worker, replacement started: {took:?}");
    assert!(took <= FAILOVER_BOUND, "{took:?} > {FAILOVER_BOUND:?}");
    no_duplicates(&work.todos);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_a_node_fails_over_within_bound() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let mut a = c.node("node-a", &["serve"]).await;
    let b = c.node("node-b", &["serve"]).await;
    let base = b.base.clone().expect("base");
    let names = ["node-a", "node-b"];
    warm_up(&c, &base, &[&a, &b], &names).await;
    let took = measure_failover(&c, &mut a, &base, &names).await;
    eprintln!("failover after kill -9 of a node: {took:?}");
    assert!(took <= FAILOVER_BOUND, "{took:?} > {FAILOVER_BOUND:?}");
}
