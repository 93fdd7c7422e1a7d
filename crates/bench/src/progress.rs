//! The live one-line progress report on stderr.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::stats::Live;

/// Whether to show progress: on a terminal, or when asked.
pub fn wanted(forced: bool) -> bool {
    forced || std::io::stderr().is_terminal()
}

/// Prints once per second until aborted. On a terminal the line is rewritten in place.
pub fn spawn(live: Arc<Live>, start: Instant) -> JoinHandle<()> {
    let tty = std::io::stderr().is_terminal();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            (start + Duration::from_secs(1)).into(),
            Duration::from_secs(1),
        );
        let mut last = 0u64;
        loop {
            tick.tick().await;
            let responses = live.responses.load(Ordering::Relaxed);
            let errors = live.errors.load(Ordering::Relaxed);
            let line = format!(
                "[{:>4}s] {:>9} req/s  {:>10} responses  {:>6} errors",
                start.elapsed().as_secs(),
                responses - last,
                responses,
                errors
            );
            last = responses;
            let mut err = std::io::stderr().lock();
            let _ = if tty {
                write!(err, "\r{line}\x1b[K")
            } else {
                writeln!(err, "{line}")
            };
            let _ = err.flush();
        }
    })
}

/// Stops the progress line and leaves the cursor on a fresh line.
pub fn stop(handle: JoinHandle<()>) {
    handle.abort();
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
}
