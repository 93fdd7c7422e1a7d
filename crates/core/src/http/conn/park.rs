//! hyper's state for a connection exists only while the client talks. hyper keeps an 8 KiB
//! header buffer from the moment a connection is built and an 8 KiB read buffer from its
//! first read, for as long as the connection lives; most open connections are idle
//! keep-alive ones, and for them that is most of what they cost.
//!
//! So a connection starts *parked*: the socket alone, waiting to become readable. When
//! bytes arrive a hyper connection is built on it. When the watchdog finds it idle between
//! requests (no request in progress, nothing of an answer left with hyper, no bytes either
//! way) for [`PARK_DELAY`], it parks it again: hyper is told to shut down gracefully, which
//! on an idle HTTP/1 connection only marks it closed (nothing is written), is driven until
//! done without closing the socket, and is taken apart. What it had read and not parsed (a
//! part of the next request head) is kept and read again, first, by the next hyper
//! connection. The watchdog, the connection slot and the state go on across a park, so
//! every deadline counts as if nothing had happened.

use std::future::Future;
use std::mem;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::io::Tracked;
use super::service::ConnService;
use super::state::ConnState;

/// How long a served connection stays idle before its hyper state is let go. A request
/// that finds its connection parked costs ~7,400 instructions more (hyper built and taken
/// apart again: ~43 % of a cached read), so the delay is well above the gap between the
/// requests of a client sending them back to back, even across continents (a round trip);
/// gaps of seconds (a user, a poller, a health check) park whatever the delay. What the
/// delay sets is how many connections that have gone quiet still hold hyper's buffers at
/// any time: 10,000 connections going idle in 0.7 s leave +6.5–7.5 kB RSS each with
/// 250 ms and +4.6–5.0 kB with 100 ms; at 2,000 a second, +2.4 kB either way
/// (`scripts/idle-memory`). The watchdog of a connection hyper serves wakes once per
/// delay, whatever its traffic.
pub const PARK_DELAY: Duration = Duration::from_millis(250);

type Http = http1::Connection<TokioIo<Tracked>, ConnService>;

enum Stage {
    /// No hyper state: waiting for the socket to become readable. `accepted`: no read was
    /// tried yet, and tokio takes a stream just accepted for readable until one finds it
    /// is not, so a peek must ask the socket; after hyper (whose last read found nothing)
    /// the readiness alone is right, and costs no system call.
    Parked {
        io: Tracked,
        svc: ConnService,
        accepted: bool,
    },
    /// hyper serves the connection.
    Serving(Box<Http>),
    /// hyper was told to shut down gracefully to be parked; it ends what it was doing.
    Parking(Box<Http>),
    /// Between two stages, and once over.
    Gone,
}

pin_project_lite::pin_project! {
    /// One connection's future: parked or served by hyper, until it closes.
    pub struct Conn {
        stage: Stage,
        http: Arc<http1::Builder>,
        state: Arc<ConnState>,
        #[pin]
        drain: DrainWatch,
        // hyper was told to finish because the server drains.
        draining: bool,
    }
}

impl Conn {
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        router: Router,
        http: Arc<http1::Builder>,
        drain: DrainWatch,
    ) -> (Conn, Arc<ConnState>) {
        let state = Arc::new(ConnState::new());
        let conn = Conn {
            stage: Stage::Parked {
                io: Tracked::new(stream, state.clone()),
                svc: ConnService {
                    router,
                    peer,
                    state: state.clone(),
                },
                accepted: true,
            },
            http,
            state: state.clone(),
            drain,
            draining: false,
        };
        (conn, state)
    }

    /// Asks hyper to end its (idle) connection so that its state can be let go; the next
    /// poll parks the socket. Only a served connection can be parked.
    pub fn park(self: Pin<&mut Self>) {
        let this = self.project();
        if let Stage::Serving(http) = mem::replace(this.stage, Stage::Gone) {
            let mut http = http;
            Pin::new(&mut *http).graceful_shutdown();
            this.state.set_parked(true);
            super::trim::released();
            *this.stage = Stage::Parking(http);
        }
    }
}

impl Future for Conn {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let drain = this.drain.started(cx);
        // The hot path: a connection hyper serves.
        if let Stage::Serving(http) = this.stage {
            if drain && !*this.draining {
                *this.draining = true;
                Pin::new(&mut **http).graceful_shutdown();
            }
            return Pin::new(&mut **http).poll(cx).map(|_| ());
        }
        loop {
            *this.stage = match mem::replace(this.stage, Stage::Gone) {
                Stage::Parked { io, svc, accepted } => {
                    if drain {
                        return Poll::Ready(());
                    }
                    if !io.holds_request() {
                        let ready = if accepted {
                            let mut byte = [0u8; 1];
                            io.inner
                                .poll_peek(cx, &mut ReadBuf::new(&mut byte))
                                .map_ok(|n| n > 0)
                        } else {
                            // Readable at the end of the stream too: hyper sees it closed.
                            io.inner.poll_read_ready(cx).map_ok(|()| true)
                        };
                        match ready {
                            Poll::Pending => {
                                let accepted = false;
                                *this.stage = Stage::Parked { io, svc, accepted };
                                return Poll::Pending;
                            }
                            // Closed by the client before its first byte, or failed.
                            Poll::Ready(Ok(false)) | Poll::Ready(Err(_)) => {
                                return Poll::Ready(());
                            }
                            Poll::Ready(Ok(true)) => {}
                        }
                    }
                    this.state.set_parked(false);
                    let http = this.http.serve_connection(TokioIo::new(io), svc);
                    Stage::Serving(Box::new(http))
                }
                Stage::Serving(mut http) => {
                    // Built just now (parked connections become readable when a request
                    // starts): serve it in this same poll.
                    let r = Pin::new(&mut *http).poll(cx);
                    *this.stage = Stage::Serving(http);
                    return r.map(|_| ());
                }
                Stage::Parking(mut http) => match http.poll_without_shutdown(cx) {
                    Poll::Pending => {
                        *this.stage = Stage::Parking(http);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    // Never taken apart with bytes unwritten (hyper's "done" does not look at
                    // its write buffer; polled again, it goes on flushing). The watchdog only
                    // parks a connection whose writes all went out, so this is a safeguard.
                    Poll::Ready(Ok(())) if this.state.write_blocked() => {
                        *this.stage = Stage::Parking(http);
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok(())) => {
                        if drain {
                            return Poll::Ready(());
                        }
                        let parts = http.into_parts();
                        let mut io = parts.io.into_inner();
                        io.unread(&parts.read_buf);
                        tracing::trace!(unread = parts.read_buf.len(), "connection parked");
                        Stage::Parked {
                            io,
                            svc: parts.service,
                            accepted: false,
                        }
                    }
                },
                Stage::Gone => return Poll::Ready(()),
            };
        }
    }
}

/// The server's drain signal, started once when it stops accepting.
#[derive(Clone)]
pub struct Drain {
    shared: Arc<DrainShared>,
}

struct DrainShared {
    started: AtomicBool,
    token: CancellationToken,
}

impl Drain {
    pub fn new() -> Self {
        Drain {
            shared: Arc::new(DrainShared {
                started: AtomicBool::new(false),
                token: CancellationToken::new(),
            }),
        }
    }

    pub fn watch(&self) -> DrainWatch {
        DrainWatch {
            wake: self.shared.token.clone().cancelled_owned(),
            shared: self.shared.clone(),
            waker: None,
        }
    }

    pub fn start(&self) {
        self.shared.started.store(true, Ordering::Release);
        self.shared.token.cancel();
    }
}

pin_project_lite::pin_project! {
    /// One connection's view of the drain signal: its wake-up is registered on the first
    /// poll (and again only if the task's waker changes); after that each poll reads one
    /// flag. (Polling a cancellation future takes a lock shared by every connection.)
    pub struct DrainWatch {
        #[pin]
        wake: WaitForCancellationFutureOwned,
        shared: Arc<DrainShared>,
        waker: Option<Waker>,
    }
}

impl DrainWatch {
    fn started(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let this = self.project();
        if this.shared.started.load(Ordering::Acquire) {
            return true;
        }
        if this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return false;
        }
        if this.wake.poll(cx).is_ready() {
            return true;
        }
        *this.waker = Some(cx.waker().clone());
        false
    }
}
