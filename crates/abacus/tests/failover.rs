//! Redis Cluster only: the master holding the sum's hash slot goes away under traffic. Two
//! nodes share a 3-master + 3-replica cluster this test owns. Clients keep adding numbers,
//! retrying with the same Idempotency-Key until answered; mid-run the sum's master is either
//! handed over (`CLUSTER FAILOVER` on its replica) or killed -9 and later restarted empty.
//! Every answer is 200 or a 503 with Retry-After, service resumes (timed), and the final sum
//! is exact on both nodes.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{config, until_count, Backend, Env, Node, Req};
use floodgate_store::redis::slots;

enum Fault {
    /// `CLUSTER FAILOVER` on the replica: it catches up first, so nothing is lost.
    Handover,
    /// SIGKILL of the master; its replica is promoted after the node timeout.
    Kill,
}

const CLIENTS: u64 = 12;
const EACH: u64 = 80;

fn body(c: u64, i: u64) -> String {
    format!(r#"{{"number":{}}}"#, c * 1000 + i + 1)
}

/// Sends one keyed addition until it is answered with 200; returns the 503s it met.
async fn add_until_answered(nodes: &[Node; 2], c: u64, i: u64) -> u64 {
    let key = format!("c{c}-{i}");
    let body = body(c, i);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut turn = (c + i) as usize;
    let mut refused = 0;
    loop {
        let r = nodes[turn % 2].send(Req::add(Some(&key), &body)).await;
        match r.status {
            200 => return refused,
            503 => {
                assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
                refused += 1;
            }
            _ => panic!("unexpected {r:?}"),
        }
        assert!(Instant::now() < deadline, "no recovery for {key}");
        turn += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(fault: Fault) {
    let Some(mut cluster) = floodgate_testkit::redis_cluster() else {
        return;
    };
    let env = Env::with(Backend::Redis(cluster.url()));
    let nodes = Arc::new([
        env.node(config(|_| {})).await,
        env.node(config(|_| {})).await,
    ]);
    let sum_key = format!("{}abacus:sum", env.prefix());
    let master = cluster.master_of_slot(slots::slot(&sum_key));
    let replica = cluster.replica_of(master);

    let done = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    // When each answer came, to find the longest stretch without one.
    let answers = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (nodes, done, refused, answers) = (
                nodes.clone(),
                done.clone(),
                refused.clone(),
                answers.clone(),
            );
            tokio::spawn(async move {
                for i in 0..EACH {
                    let n = add_until_answered(&nodes, c, i).await;
                    refused.fetch_add(n, Ordering::Relaxed);
                    answers.lock().expect("answers").push(Instant::now());
                    done.fetch_add(1, Ordering::Relaxed);
                    // Spread the run out so the fault lands in the middle of it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();

    let total = CLIENTS * EACH;
    until_count(&done, total / 4).await;
    let fault_at = Instant::now();
    let done_at_fault = done.load(Ordering::Relaxed);
    match fault {
        Fault::Handover => cluster.failover(replica),
        Fault::Kill => cluster.kill(master),
    }
    let healed = cluster.wait_ok(Duration::from_secs(30));
    if let Fault::Kill = fault {
        // Back on its port with no data: it rejoins as the new master's replica.
        cluster.restart(master);
        cluster.wait_ok(Duration::from_secs(30));
    }
    for c in clients {
        c.await.expect("client task");
    }
    assert!(
        done_at_fault < total,
        "the fault hit before the clients finished"
    );

    let gap = {
        let mut at = answers.lock().expect("answers").clone();
        at.sort();
        at.windows(2)
            .filter(|w| w[1] > fault_at)
            .map(|w| w[1] - w[0].max(fault_at))
            .max()
            .unwrap_or_default()
    };
    let expected: i64 = (0..CLIENTS)
        .flat_map(|c| (0..EACH).map(move |i| (c * 1000 + i + 1) as i64))
        .sum();
    // Redis replicates asynchronously: a master killed -9 can take writes it acknowledged
    // in its last milliseconds with it. Sending every key once more finds them (their
    // record went too) and applies them once; a key whose record survived is a replay.
    let mut lost = 0;
    for c in 0..CLIENTS {
        for i in 0..EACH {
            let r = nodes[0]
                .send(Req::add(Some(&format!("c{c}-{i}")), &body(c, i)))
                .await;
            assert_eq!(r.status, 200, "{r:?}");
            if !r.replayed() {
                lost += 1;
            }
        }
    }
    eprintln!(
        "cluster healthy {healed:?} after the fault; longest wait for an answer after it {gap:?}; \
         {} answers were 503; {lost} acknowledged additions were lost with the master",
        refused.load(Ordering::Relaxed)
    );
    if let Fault::Handover = fault {
        assert_eq!(lost, 0, "a handover loses nothing");
    }
    assert!(
        gap < Duration::from_secs(20),
        "service resumed only after {gap:?}"
    );
    assert_eq!(nodes[0].sum().await, expected);
    assert_eq!(nodes[1].sum().await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_of_the_sums_master_keeps_the_sum_exact() {
    run(Fault::Handover).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_master_killed_mid_run_sum_stays_exact() {
    run(Fault::Kill).await
}
