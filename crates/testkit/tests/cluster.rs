//! The test-owned Redis Cluster behaves like one: keys land where the store's `slots::slot` says, a
//! crashed master's replica takes over with the data, the old master rejoins as a
//! replica, and a manual failover hands the slots back.

use floodgate_store::redis::slots::slot;
use floodgate_testkit::redis_cluster;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(30);

#[test]
fn master_crash_promotes_its_replica_with_the_data() {
    let Some(mut c) = redis_cluster() else { return };
    let url = c.url();
    assert!(url.starts_with("redis+cluster://127.0.0.1:"), "{url}");
    assert_eq!(url.matches(',').count(), 5, "{url}");
    assert_eq!(c.masters().len(), 3);

    // the slot computation agrees with the server's
    for key in [
        "foo",
        "{user1000}.following",
        "{user1000}.followers",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "",
    ] {
        let served = c.cli(0, &["CLUSTER", "KEYSLOT", key]);
        assert_eq!(served, slot(key).to_string(), "{key:?}");
    }

    let key = "floodgate:testkit:failover";
    let slot = slot(key);
    let master = c.master_of_slot(slot);
    let replica = c.replica_of(master);
    assert_ne!(master, replica);
    let other = (0..6).find(|&i| i != master && i != replica).unwrap();

    // written through another node (redirected); WAIT on the same connection makes
    // sure the replica has it before the master dies
    let out = cli_script(c.port(other), &format!("SET {key} v1\nWAIT 1 5000\n"));
    assert!(out.ends_with("OK\n1"), "SET + WAIT said: {out:?}");

    let t0 = Instant::now();
    c.kill(master);
    c.wait_ok(SETTLE);
    let took = t0.elapsed();
    eprintln!(
        "failover: replica {replica} serves slot {slot} {took:?} after master {master} was killed (node timeout {} ms)",
        floodgate_testkit::NODE_TIMEOUT_MS
    );
    assert_eq!(c.master_of_slot(slot), replica);
    assert_eq!(c.cli(other, &["GET", key]), "v1");

    // the old master comes back as the new master's replica and syncs
    c.restart(master);
    let took = c.wait_ok(SETTLE);
    eprintln!("rejoin as replica: {took:?}");
    assert_eq!(c.replica_of(replica), master);
    assert_eq!(c.master_of_slot(slot), replica);

    // a manual failover hands the slots back, data intact
    let t0 = Instant::now();
    c.failover(master);
    c.wait_ok(SETTLE);
    eprintln!("manual failover: {:?}", t0.elapsed());
    assert_eq!(c.master_of_slot(slot), master);
    assert_eq!(c.replica_of(master), replica);
    assert_eq!(c.cli(replica, &["GET", key]), "v1");
}

/// Feeds `script` (one command per line) to `redis-cli -c -p port`: one connection,
/// which follows redirections.
fn cli_script(port: u16, script: &str) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-c", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run redis-cli");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("redis-cli output");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
