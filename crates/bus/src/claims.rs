//! Who reads which partition, decided through the shared store instead of the broker's
//! group coordinator.
//!
//! Tansu 0.6's coordinator strands groups: a dead leader stays as a ghost, a broker that lost
//! its state or stalled past the session leaves members waiting for an assignment that never
//! comes, and every rebalance costs ~3 s of pause (see `rejoin`). With a shared store, a
//! Kafka consumer does not join a group at all: each member announces itself with a lease,
//! claims its fair share of partitions as leases of their own, and assigns them by hand,
//! committing offsets under the group's id. A member killed without leaving loses its claims
//! after `CLAIM_TTL`; the survivors take them at their next `TICK`. The broker is then used
//! only for fetch, produce and offsets, which it does reliably.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use floodgate_store::{Lease, SharedStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a claim (and a member's presence) outlives its last renewal: the failover time.
pub const CLAIM_TTL: Duration = Duration::from_secs(3);
/// How often a member renews, counts the members and takes or gives partitions.
pub const TICK: Duration = Duration::from_secs(1);
/// Most members one group can have.
const MEMBERS: u32 = 1024;

/// Leases for group members and partition claims. `Err` = the store is unreachable.
#[async_trait]
pub trait Claims: Send + Sync + 'static {
    /// Announces (or renews) `member`; returns how many members are live, this one included.
    async fn announce(&self, pool: &str, member: &str) -> Result<u32, String>;
    /// Takes or keeps `key` for `member`; false while another member holds it.
    async fn hold(&self, key: &str, member: &str) -> Result<bool, String>;
    /// Gives `key` (or the member's presence in a pool) back; a no-op when not held.
    async fn release(&self, key: &str, member: &str);
}

/// Claims as leases in the store: a pool of members, a one-slot pool per partition.
pub struct StoreClaims(pub SharedStore);

#[async_trait]
impl Claims for StoreClaims {
    async fn announce(&self, pool: &str, member: &str) -> Result<u32, String> {
        let store = &self.0;
        store
            .lease_acquire(Lease {
                pool,
                holder: member,
                capacity: MEMBERS,
                ttl: CLAIM_TTL,
            })
            .await
            .map_err(|e| e.to_string())?;
        store.lease_count(pool).await.map_err(|e| e.to_string())
    }

    async fn hold(&self, key: &str, member: &str) -> Result<bool, String> {
        self.0
            .lease_acquire(Lease {
                pool: key,
                holder: member,
                capacity: 1,
                ttl: CLAIM_TTL,
            })
            .await
            .map_err(|e| e.to_string())
    }

    async fn release(&self, key: &str, member: &str) {
        if let Err(e) = self.0.lease_release(key, member).await {
            tracing::debug!(
                key,
                "cannot give a partition claim back; it will expire: {e}"
            );
        }
    }
}

/// What a member does with its partitions. Called from blocking threads: librdkafka's calls
/// wait on its own threads.
pub trait Partitions: Send + Sync + 'static {
    /// Partitions of the topic; `None` when the broker does not answer.
    fn count(&self) -> Option<i32>;
    /// Starts reading `parts` from the group's committed offsets.
    fn take(&self, parts: &[i32]);
    /// Stops reading `parts`; `handover` commits what was processed first (given away,
    /// not lost).
    fn give(&self, parts: &[i32], handover: bool);
}

/// What one tick changes: partitions to give away and, in order of preference, to try
/// until the member holds its `share`.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub share: usize,
    pub give: Vec<i32>,
    pub try_take: Vec<i32>,
}

/// The fair share is ceil(partitions / members). A member prefers the partitions starting at
/// its own `offset`, so members spread over the topic instead of racing for partition 0.
pub fn plan(held: &BTreeSet<i32>, partitions: i32, members: u32, offset: u32) -> Plan {
    let parts = partitions.max(0) as u32;
    if parts == 0 {
        return Plan {
            share: 0,
            give: Vec::new(),
            try_take: Vec::new(),
        };
    }
    let share = parts.div_ceil(members.max(1)) as usize;
    let order: Vec<i32> = (0..parts).map(|i| ((offset + i) % parts) as i32).collect();
    // Partitions beyond the topic's count (it was made again smaller) are given up first.
    let mut give: Vec<i32> = held.iter().copied().filter(|p| *p >= partitions).collect();
    let kept: Vec<i32> = order.iter().copied().filter(|p| held.contains(p)).collect();
    give.extend(kept.iter().skip(share));
    let try_take = match kept.len() < share {
        true => order.into_iter().filter(|p| !held.contains(p)).collect(),
        false => Vec::new(),
    };
    Plan {
        share,
        give,
        try_take,
    }
}

/// The task that keeps one consumer's claims. Stop it with `stop`; it then gives every
/// claim back and leaves.
pub struct Keeper {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Names {
    members: String,
    member: String,
    claim_prefix: String,
    offset: u32,
}

impl Names {
    fn new(group: &str, topic: &str, member: &str) -> Self {
        let offset = member
            .bytes()
            .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        Names {
            members: format!("bus:{group}:{topic}:members"),
            member: member.to_string(),
            claim_prefix: format!("bus:{group}:{topic}:p"),
            offset,
        }
    }

    fn claim(&self, partition: i32) -> String {
        format!("{}{partition}", self.claim_prefix)
    }
}

impl Keeper {
    pub fn spawn(
        claims: Arc<dyn Claims>,
        parts: Arc<dyn Partitions>,
        group: &str,
        topic: &str,
        member: &str,
    ) -> Keeper {
        let (stop, stopped) = watch::channel(false);
        let names = Names::new(group, topic, member);
        let task = tokio::spawn(keep(claims, parts, names, stopped));
        Keeper { stop, task }
    }

    /// Asks the task to give everything back; the handle resolves once it has.
    pub fn stop(self) -> JoinHandle<()> {
        self.stop.send_replace(true);
        self.task
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

async fn keep(
    claims: Arc<dyn Claims>,
    parts: Arc<dyn Partitions>,
    names: Names,
    mut stopped: watch::Receiver<bool>,
) {
    let mut held = BTreeSet::new();
    let mut count = Count::default();
    loop {
        if *stopped.borrow() {
            break;
        }
        tick(&*claims, &parts, &names, &mut held, &mut count).await;
        tokio::select! {
            _ = stopped.changed() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
    let all: Vec<i32> = held.iter().copied().collect();
    let (p, given) = (parts.clone(), all.clone());
    blocking(move || p.give(&given, false)).await;
    for partition in all {
        claims.release(&names.claim(partition), &names.member).await;
    }
    claims.release(&names.members, &names.member).await;
}

/// The topic's partition count: asked for until known, then again every `RECOUNT` ticks (a
/// broker that lost the topic may make it again with another count).
#[derive(Default)]
struct Count {
    known: Option<i32>,
    age: u32,
}

const RECOUNT: u32 = 10;

impl Count {
    async fn get(&mut self, parts: &Arc<dyn Partitions>) -> Option<i32> {
        self.age += 1;
        if self.known.is_none() || self.age >= RECOUNT {
            let p = parts.clone();
            if let Some(n) = blocking(move || p.count())
                .await
                .flatten()
                .filter(|n| *n > 0)
            {
                self.known = Some(n);
                self.age = 0;
            }
        }
        self.known
    }
}

async fn tick(
    claims: &dyn Claims,
    parts: &Arc<dyn Partitions>,
    names: &Names,
    held: &mut BTreeSet<i32>,
    count: &mut Count,
) {
    let members = match claims.announce(&names.members, &names.member).await {
        Ok(n) => n,
        // The store is away: nobody can take our partitions either, so keep reading them.
        Err(e) => {
            tracing::debug!("cannot renew bus claims: {e}");
            return;
        }
    };
    let lost = renew(claims, names, held).await;
    if !lost.is_empty() {
        tracing::info!(?lost, member = %names.member, "partition claims lost to another member");
        let p = parts.clone();
        blocking(move || p.give(&lost, false)).await;
    }
    let Some(partitions) = count.get(parts).await else {
        return;
    };
    let plan = plan(held, partitions, members, names.offset);
    if !plan.give.is_empty() {
        let give = plan.give.clone();
        let p = parts.clone();
        blocking(move || p.give(&give, true)).await;
        for partition in &plan.give {
            held.remove(partition);
            claims
                .release(&names.claim(*partition), &names.member)
                .await;
        }
    }
    let mut taken = Vec::new();
    for partition in plan.try_take {
        if held.len() >= plan.share {
            break;
        }
        if let Ok(true) = claims.hold(&names.claim(partition), &names.member).await {
            held.insert(partition);
            taken.push(partition);
        }
    }
    if !taken.is_empty() {
        tracing::debug!(?taken, member = %names.member, "partitions claimed");
        let p = parts.clone();
        blocking(move || p.take(&taken)).await;
    }
}

/// Renews every held claim; returns (and forgets) those another member has taken.
async fn renew(claims: &dyn Claims, names: &Names, held: &mut BTreeSet<i32>) -> Vec<i32> {
    let mut lost = Vec::new();
    for partition in held.iter().copied() {
        // A store error keeps the claim: see `tick`.
        if let Ok(false) = claims.hold(&names.claim(partition), &names.member).await {
            lost.push(partition);
        }
    }
    for partition in &lost {
        held.remove(partition);
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(parts: &[i32]) -> BTreeSet<i32> {
        parts.iter().copied().collect()
    }

    #[test]
    fn a_lone_member_takes_every_partition_from_its_offset() {
        let p = plan(&set(&[]), 4, 1, 6);
        assert_eq!(p.give, Vec::<i32>::new());
        assert_eq!(p.try_take, vec![2, 3, 0, 1]);
    }

    #[test]
    fn a_member_above_its_share_gives_the_excess_and_takes_nothing() {
        let p = plan(&set(&[0, 1, 2, 3, 4, 5, 6, 7]), 8, 2, 0);
        assert_eq!(p.give, vec![4, 5, 6, 7]);
        assert!(p.try_take.is_empty());
        // Three members on eight partitions: a share of three.
        let p = plan(&set(&[0, 1, 2, 3]), 8, 3, 1);
        assert_eq!(p.give, vec![0]);
    }

    #[test]
    fn a_member_below_its_share_tries_the_partitions_it_does_not_hold() {
        let p = plan(&set(&[5]), 8, 2, 4);
        assert!(p.give.is_empty());
        assert_eq!(p.try_take, vec![4, 6, 7, 0, 1, 2, 3]);
    }

    #[test]
    fn partitions_beyond_a_smaller_topic_are_given_up() {
        let p = plan(&set(&[0, 9]), 2, 1, 0);
        assert_eq!(p.give, vec![9]);
        assert_eq!(p.try_take, vec![1]);
    }

    #[test]
    fn an_unknown_topic_changes_nothing() {
        let p = plan(&set(&[0]), 0, 1, 0);
        assert!(p.give.is_empty() && p.try_take.is_empty());
    }
}
