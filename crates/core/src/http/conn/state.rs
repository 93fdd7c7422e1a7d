//! What one connection is doing, shared by its I/O wrapper, its request bodies, its service
//! and its watchdog. All of them run in the connection's one task, so the atomics are never
//! contended; they are atomics only because the parts must be `Send`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The phase decides which deadline applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Between requests: closed after the idle timeout without I/O.
    Idle = 0,
    /// Request headers arriving: closed when they take longer than the header timeout.
    Head = 1,
    /// Request body arriving: 408 when it takes longer than the body timeout.
    Body = 2,
    /// A handler running or a response being written: the idle rule (no I/O) applies.
    Busy = 3,
    /// The body deadline passed: the 408 has this long to go out before the close.
    Closing = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Idle,
            1 => Phase::Head,
            2 => Phase::Body,
            3 => Phase::Busy,
            _ => Phase::Closing,
        }
    }
}

/// The three timeouts a connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
}

pub struct ConnState {
    phase: AtomicU8,
    /// When the phase began, in milliseconds since `epoch`.
    since_ms: AtomicU64,
    /// Successful reads and writes, so the watchdog can tell silence from traffic.
    activity: AtomicU64,
    /// Set by the watchdog when the body deadline passed: the body fails on its next poll.
    body_late: AtomicBool,
    /// Set by the body when it failed for lateness: the response becomes a 408.
    body_failed: AtomicBool,
    /// An answer's body is with hyper: set when the handler answers, cleared when hyper
    /// drops the body (all of it taken, or the connection gave up on it).
    answering: AtomicBool,
    /// The last write found the socket full: hyper holds bytes it has not handed over.
    write_blocked: AtomicBool,
    /// The connection holds no hyper state (it waits for bytes on the socket alone), or is
    /// giving it up.
    parked: AtomicBool,
    epoch: Instant,
}

impl ConnState {
    /// A new connection is held to the header deadline from the moment it is accepted, and
    /// starts parked: hyper's state is built when its first bytes arrive.
    pub fn new() -> Self {
        ConnState {
            phase: AtomicU8::new(Phase::Head as u8),
            since_ms: AtomicU64::new(0),
            activity: AtomicU64::new(0),
            body_late: AtomicBool::new(false),
            body_failed: AtomicBool::new(false),
            answering: AtomicBool::new(false),
            write_blocked: AtomicBool::new(false),
            parked: AtomicBool::new(true),
            epoch: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn instant_at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    pub fn phase(&self) -> (Phase, u64) {
        (
            Phase::from_u8(self.phase.load(Relaxed)),
            self.since_ms.load(Relaxed),
        )
    }

    pub fn enter(&self, phase: Phase) {
        self.since_ms.store(self.now_ms(), Relaxed);
        self.phase.store(phase as u8, Relaxed);
    }

    /// Keeps the phase's start time (the Busy deadline counts from the request's start).
    fn switch(&self, phase: Phase) {
        self.phase.store(phase as u8, Relaxed);
    }

    pub fn activity(&self) -> u64 {
        self.activity.load(Relaxed)
    }

    /// Bytes moved. The first byte read between requests starts the header deadline.
    pub fn on_io(&self, read: bool) {
        self.activity.fetch_add(1, Relaxed);
        if read && self.phase.load(Relaxed) == Phase::Idle as u8 {
            self.enter(Phase::Head);
        }
    }

    /// A write was taken whole or in part (`blocked` false), or found the socket full.
    pub fn on_write(&self, blocked: bool) {
        if !blocked {
            self.activity.fetch_add(1, Relaxed);
        }
        self.write_blocked.store(blocked, Relaxed);
    }

    pub fn write_blocked(&self) -> bool {
        self.write_blocked.load(Relaxed)
    }

    /// Hyper was handed an answer body (`true`) or has dropped it (`false`).
    pub fn set_answering(&self, answering: bool) {
        self.answering.store(answering, Relaxed);
    }

    /// Nothing of an answer is left with hyper: no body, no unwritten bytes.
    pub fn quiet(&self) -> bool {
        !self.answering.load(Relaxed) && !self.write_blocked.load(Relaxed)
    }

    pub fn set_parked(&self, parked: bool) {
        self.parked.store(parked, Relaxed);
    }

    pub fn is_parked(&self) -> bool {
        self.parked.load(Relaxed)
    }

    /// Headers parsed; the body (if any) must now arrive within the body timeout.
    pub fn on_request(&self, has_body: bool) {
        if has_body {
            self.enter(Phase::Body);
        } else {
            self.switch(Phase::Busy);
        }
    }

    pub fn on_body_end(&self) {
        if self.phase.load(Relaxed) == Phase::Body as u8 {
            self.switch(Phase::Busy);
        }
    }

    /// The handler answered. True when the body had failed for lateness: the caller turns
    /// the answer into a 408.
    pub fn on_response(&self) -> bool {
        if self.body_failed.load(Relaxed) {
            return true;
        }
        if self.phase.load(Relaxed) != Phase::Closing as u8 {
            self.enter(Phase::Idle);
        }
        false
    }

    pub fn mark_body_late(&self) {
        self.body_late.store(true, Relaxed);
        self.enter(Phase::Closing);
    }

    /// Polled by the body before each read: true once the deadline has passed.
    pub fn body_is_late(&self) -> bool {
        if self.body_late.load(Relaxed) {
            self.body_failed.store(true, Relaxed);
            return true;
        }
        false
    }
}

impl Limits {
    /// The shortest timeout: the watchdog never sleeps longer, so a phase entered while it
    /// sleeps is never noticed after its own deadline.
    pub fn shortest(&self) -> Duration {
        self.header.min(self.body).min(self.idle)
    }

    pub fn of(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Idle | Phase::Busy => self.idle,
            Phase::Head => self.header,
            Phase::Body => self.body,
            Phase::Closing => CLOSE_GRACE,
        }
    }
}

/// Time a late body's 408 has to reach the client.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
