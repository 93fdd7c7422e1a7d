//! One deadline per connection. The watchdog wraps the connection's future and owns a single
//! `Sleep`; it never sleeps longer than the shortest timeout, so a phase entered while it
//! sleeps is always checked before that phase's deadline. When it wakes it reads the state:
//! a deadline still ahead re-arms the sleep (later, never earlier), a passed one closes the
//! connection, or for a late body raises the flag that turns the answer into a 408. While
//! hyper serves the connection it also never sleeps longer than the park delay, and parks
//! the connection once it has been idle that long (see `park`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::park::{Conn, PARK_DELAY};
use super::state::{ConnState, Limits, Phase};

pin_project_lite::pin_project! {
    pub struct Watched {
        #[pin]
        conn: Conn,
        #[pin]
        alarm: Sleep,
        state: Arc<ConnState>,
        limits: Limits,
        // The phase as last seen, and the I/O count then.
        seen: (Phase, u64),
        seen_activity: u64,
        // When the watchdog last saw the I/O count move (ms), for the idle rule.
        moved_ms: u64,
        // Whether the connection was parked when last seen.
        seen_parked: bool,
    }
}

#[cfg_attr(test, derive(Debug, PartialEq))]
enum Verdict {
    Wait(u64),
    Late,
    Close,
    Park,
}

impl Watched {
    pub fn new(conn: Conn, state: Arc<ConnState>, limits: Limits) -> Self {
        let first = Instant::now() + limits.shortest();
        Watched {
            conn,
            alarm: tokio::time::sleep_until(first),
            seen: state.phase(),
            seen_activity: 0,
            moved_ms: 0,
            seen_parked: state.is_parked(),
            state,
            limits,
        }
    }
}

impl Future for Watched {
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
            let parked = this.state.is_parked();
            if parked != *this.seen_parked {
                *this.seen_parked = parked;
                // hyper was built on bytes that came while parked: the sleep (armed up to
                // the shortest timeout ahead) must come back within a park delay.
                let soon = Instant::now() + PARK_DELAY.min(this.limits.shortest());
                if !parked && this.alarm.deadline() > soon {
                    this.alarm.as_mut().reset(soon);
                }
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
                let serving = !this.state.is_parked();
                let parkable = serving && this.state.quiet();
                let moved = *this.moved_ms;
                match verdict(phase, since, moved, now, this.limits, serving, parkable) {
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
                    Verdict::Park => {
                        // Poll the connection again: hyper ends, and the socket is parked.
                        // The sleep, still due, is re-armed for the parked connection then.
                        this.conn.as_mut().park();
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
/// headers and bodies from their first byte, however slowly the rest trickles in. A
/// `serving` connection (hyper built) is looked at at least once per park delay, and parked
/// once idle between requests that long if `parkable` (nothing of an answer left with
/// hyper).
fn verdict(
    phase: Phase,
    since: u64,
    moved: u64,
    now: u64,
    limits: &Limits,
    serving: bool,
    parkable: bool,
) -> Verdict {
    let start = match phase {
        Phase::Idle | Phase::Busy => since.max(moved),
        Phase::Head | Phase::Body | Phase::Closing => since,
    };
    let due = start.saturating_add(ms(limits.of(phase)));
    if now < due {
        let mut step = limits.shortest();
        if serving {
            step = step.min(PARK_DELAY);
        }
        let mut wake = due.min(now.saturating_add(ms(step).max(1)));
        if parkable && phase == Phase::Idle {
            let park_at = start.saturating_add(ms(PARK_DELAY));
            if now >= park_at {
                return Verdict::Park;
            }
            wake = wake.min(park_at);
        }
        return Verdict::Wait(wake);
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
        let at = |phase, now| verdict(phase, 100, 0, now, &LIMITS, false, false);
        // (phase, a moment before its deadline, the wake-up then, the deadline, its verdict)
        for (phase, before, wake, due, then) in [
            (Phase::Head, 105, 110, 110, Verdict::Close),
            // Never sleeps longer than the shortest timeout.
            (Phase::Body, 100, 110, 130, Verdict::Late),
            (Phase::Idle, 155, 160, 160, Verdict::Close),
        ] {
            assert_eq!(wait(at(phase, before)), Some(wake), "{phase:?}");
            assert_eq!(at(phase, due), then, "{phase:?}");
        }
    }

    #[test]
    fn traffic_postpones_only_the_idle_rule() {
        // I/O seen at 150 moves the idle deadline to 210.
        assert_eq!(
            wait(verdict(Phase::Idle, 100, 150, 200, &LIMITS, false, false)),
            Some(210)
        );
        assert_eq!(
            wait(verdict(Phase::Busy, 100, 150, 200, &LIMITS, false, false)),
            Some(210)
        );
        // A trickling body is not saved by its trickle.
        assert!(matches!(
            verdict(Phase::Body, 100, 150, 200, &LIMITS, false, false),
            Verdict::Late
        ));
    }

    #[test]
    fn a_served_connection_idle_for_the_park_delay_is_parked() {
        let p = ms(PARK_DELAY);
        let limits = Limits {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        };
        // A served connection is looked at within a park delay, whatever its phase.
        assert_eq!(
            wait(verdict(Phase::Busy, 100, 0, 100, &limits, true, false)),
            Some(100 + p)
        );
        assert_eq!(
            wait(verdict(Phase::Idle, 100, 0, 100, &limits, true, true)),
            Some(100 + p)
        );
        // Parked once idle a park delay after its last I/O...
        assert!(matches!(
            verdict(Phase::Idle, 100, 150, 150 + p, &limits, true, true),
            Verdict::Park
        ));
        assert!(matches!(
            wait(verdict(Phase::Idle, 100, 150, 149 + p, &limits, true, true)),
            Some(at) if at == 150 + p
        ));
        // ...but not with an answer left with hyper, a request under way, or when parked.
        for (phase, serving, parkable) in [
            (Phase::Idle, true, false),
            (Phase::Busy, true, true),
            (Phase::Head, true, true),
            (Phase::Idle, false, false),
        ] {
            assert!(
                wait(verdict(phase, 100, 0, 100 + p, &limits, serving, parkable)).is_some(),
                "{phase:?} serving={serving} parkable={parkable}"
            );
        }
        // A parked connection sleeps up to the shortest timeout, and its idle deadline holds.
        assert_eq!(
            wait(verdict(Phase::Idle, 100, 0, 100 + p, &limits, false, false)),
            Some(100 + p + 10_000)
        );
        assert!(matches!(
            verdict(Phase::Idle, 100, 0, 60_100, &limits, false, false),
            Verdict::Close
        ));
    }
}
