//! One deadline per connection. The watchdog wraps the connection's future and owns a single
//! `Sleep`; it never sleeps longer than the shortest timeout, so a phase entered while it
//! sleeps is always checked before that phase's deadline. When it wakes it reads the state:
//! a deadline still ahead re-arms the sleep (later, never earlier), a passed one closes the
//! connection, or for a late body raises the flag that turns the answer into a 408.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::state::{ConnState, Limits, Phase};

pin_project_lite::pin_project! {
    pub struct Watched<C> {
        #[pin]
        conn: C,
        #[pin]
        alarm: Sleep,
        state: Arc<ConnState>,
        limits: Limits,
        // The phase as last seen, and the I/O count then.
        seen: (Phase, u64),
        seen_activity: u64,
        // When the watchdog last saw the I/O count move (ms), for the idle rule.
        moved_ms: u64,
    }
}

enum Verdict {
    Wait(u64),
    Late,
    Close,
}

impl<C> Watched<C> {
    pub fn new(conn: C, state: Arc<ConnState>, limits: Limits) -> Self {
        let first = Instant::now() + limits.shortest();
        Watched {
            conn,
            alarm: tokio::time::sleep_until(first),
            seen: state.phase(),
            seen_activity: 0,
            moved_ms: 0,
            state,
            limits,
        }
    }
}

impl<C: Future> Future for Watched<C> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        loop {
            if this.conn.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let phase = this.state.phase();
            if phase != *this.seen {
                *this.seen = phase;
                *this.seen_activity = this.state.activity();
                *this.moved_ms = 0;
            }
            loop {
                if this.alarm.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let now = this.state.now_ms();
                let (phase, since) = this.state.phase();
                let activity = this.state.activity();
                if activity != *this.seen_activity {
                    *this.seen_activity = activity;
                    *this.moved_ms = now;
                }
                let verdict = verdict(phase, since, *this.moved_ms, now, this.limits);
                match verdict {
                    Verdict::Wait(at) => {
                        let at = this.state.instant_at(at);
                        this.alarm.as_mut().reset(Instant::from_std(at));
                    }
                    Verdict::Close => {
                        tracing::debug!(?phase, "connection deadline passed; closing");
                        return Poll::Ready(());
                    }
                    Verdict::Late => {
                        this.state.mark_body_late();
                        let at = this.state.instant_at(now) + this.limits.of(Phase::Closing);
                        this.alarm.as_mut().reset(Instant::from_std(at));
                        // Poll the connection again: the handler reads the body, fails,
                        // and its answer becomes the 408.
                        break;
                    }
                }
            }
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the state asks for at `now`. Idle and busy connections count from their last I/O;
/// headers and bodies from their first byte, however slowly the rest trickles in.
fn verdict(phase: Phase, since: u64, moved: u64, now: u64, limits: &Limits) -> Verdict {
    let start = match phase {
        Phase::Idle | Phase::Busy => since.max(moved),
        Phase::Head | Phase::Body | Phase::Closing => since,
    };
    let due = start.saturating_add(ms(limits.of(phase)));
    if now < due {
        return Verdict::Wait(due.min(now.saturating_add(ms(limits.shortest()).max(1))));
    }
    match phase {
        Phase::Body => Verdict::Late,
        Phase::Idle | Phase::Busy | Phase::Head | Phase::Closing => Verdict::Close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header: Duration::from_millis(10),
        body: Duration::from_millis(30),
        idle: Duration::from_millis(60),
    };

    fn wait(v: Verdict) -> Option<u64> {
        match v {
            Verdict::Wait(at) => Some(at),
            _ => None,
        }
    }

    #[test]
    fn each_phase_has_its_own_deadline() {
        assert_eq!(wait(verdict(Phase::Head, 100, 0, 105, &LIMITS)), Some(110));
        assert!(matches!(
            verdict(Phase::Head, 100, 0, 110, &LIMITS),
            Verdict::Close
        ));
        // Never sleeps longer than the shortest timeout.
        assert_eq!(wait(verdict(Phase::Body, 100, 0, 100, &LIMITS)), Some(110));
        assert!(matches!(
            verdict(Phase::Body, 100, 0, 130, &LIMITS),
            Verdict::Late
        ));
        assert_eq!(wait(verdict(Phase::Idle, 100, 0, 155, &LIMITS)), Some(160));
        assert!(matches!(
            verdict(Phase::Idle, 100, 0, 160, &LIMITS),
            Verdict::Close
        ));
    }

    #[test]
    fn traffic_postpones_only_the_idle_rule() {
        // I/O seen at 150 moves the idle deadline to 210.
        assert_eq!(
            wait(verdict(Phase::Idle, 100, 150, 200, &LIMITS)),
            Some(210)
        );
        assert_eq!(
            wait(verdict(Phase::Busy, 100, 150, 200, &LIMITS)),
            Some(210)
        );
        // A trickling body is not saved by its trickle.
        assert!(matches!(
            verdict(Phase::Body, 100, 150, 200, &LIMITS),
            Verdict::Late
        ));
    }
}
