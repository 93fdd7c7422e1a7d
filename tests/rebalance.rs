//! Four `floodgate worker` processes share the prime-job and todo topics (8 partitions
//! each, claimed through Redis) on real Redis + Tansu + PostgreSQL. While jobs and todo
//! writes flow, one worker is killed with -9 and a fifth is started: every job completes,
//! and every todo ends with the last of its writes (per-todo order kept, no write applied
//! twice or lost across the handovers). Needs FLOODGATE_TEST_{REDIS_URL,KAFKA_BROKERS,
//! DATABASE_URL}.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{consumed_everywhere, no_duplicates, warm_up, Cluster, Work};

/// Work flows this long; the kill comes after KILL_AT, the new worker after ADD_AT (claims
/// of the dead expire after 3 s; the newcomer is given its share a tick or two after it
/// starts, by the others handing partitions over).
const FLOW: Duration = Duration::from_secs(14);
const KILL_AT: Duration = Duration::from_secs(2);
const ADD_AT: Duration = Duration::from_secs(7);
/// Titles each todo of a round goes through, in order; the last one must stay.
const WRITES: usize = 3;
/// Clients sending work at once.
const WRITERS: usize = 4;

/// Bursts of jobs and todos, each todo then retitled WRITES times in order, until `end`.
/// Returns the work, each todo's last title, and the rounds sent.
async fn write_until(
    c: Arc<Cluster>,
    base: String,
    end: Instant,
) -> (Work, Vec<(String, String)>, usize) {
    let (mut all, mut last_titles, mut rounds) = (Work::default(), Vec::new(), 0);
    while Instant::now() < end {
        rounds += 1;
        let work = c.burst(&base).await;
        for id in &work.todos {
            for w in 1..=WRITES {
                c.retitle(&base, id, &format!("{id} v{w}")).await;
            }
            last_titles.push((id.clone(), format!("{id} v{WRITES}")));
        }
        all.jobs.extend(work.jobs);
        all.todos.extend(work.todos);
    }
    (all, last_titles, rounds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_and_added_while_work_flows_lose_and_repeat_nothing() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let (_api, base) = c.api_node().await;
    let mut workers: Vec<_> = (1..=4)
        .map(|i| c.spawn(&format!("worker-{i}"), &["worker"]))
        .collect();
    let names = [
        "api", "worker-1", "worker-2", "worker-3", "worker-4", "worker-5",
    ];
    let members: Vec<_> = workers.iter().collect();
    warm_up(&c, &base, &members, &names).await;

    let started = Instant::now();
    let c = Arc::new(c);
    // Concurrent writers, so the producer batches several records per partition.
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| tokio::spawn(write_until(c.clone(), base.clone(), started + FLOW)))
        .collect();
    tokio::time::sleep_until((started + KILL_AT).into()).await;
    workers[0].kill9();
    eprintln!("worker-1 killed at {:?}", started.elapsed());
    tokio::time::sleep_until((started + ADD_AT).into()).await;
    workers.push(c.spawn("worker-5", &["worker"]));
    eprintln!("worker-5 started at {:?}", started.elapsed());
    let (mut all, mut last_titles, mut rounds) = (Work::default(), Vec::new(), 0);
    for w in writers {
        let (work, titles, n) = w.await.expect("writer");
        all.jobs.extend(work.jobs);
        all.todos.extend(work.todos);
        last_titles.extend(titles);
        rounds += n;
    }
    let sent = started.elapsed();
    let left = c.finish(&base, &all, Duration::from_secs(60)).await;
    assert!(left.is_empty(), "never done: {left:?}\n{}", c.logs(&names));
    let wrong = c.titles(&base, &last_titles, Duration::from_secs(30)).await;
    assert!(
        wrong.is_empty(),
        "{} of {} todos do not end with their last write: {:?}\n{}",
        wrong.len(),
        last_titles.len(),
        &wrong[..wrong.len().min(5)],
        c.logs(&names)
    );
    no_duplicates(&all.todos);
    eprintln!(
        "{} jobs and {} todos x {} writes over {rounds} rounds in {sent:?}; all done {:?} after the last was sent",
        all.jobs.len(),
        all.todos.len(),
        WRITES + 1,
        started.elapsed() - sent
    );
    for w in workers.iter_mut().skip(1) {
        assert!(w.alive(), "{} exited", w.name);
    }
    let newcomer: Vec<_> = workers.iter().skip(4).collect();
    assert!(
        consumed_everywhere(&c, &newcomer).await,
        "worker-5 was never given partitions of both topics\n{}",
        c.logs(&names)
    );
}
