//! Turning SIGTERM / SIGINT into one cancellation every task can watch.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Signal handlers, installed before start-up so a SIGTERM that arrives while the node is
/// still starting is not fatal (the default action would kill the process mid-start).
pub struct Signals {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Signals {
    pub fn install() -> Signals {
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Cancels `token` on the first SIGTERM or SIGINT.
    pub fn cancel_on_signal(self, token: CancellationToken) {
        let Signals { mut term, mut int } = self;
        tokio::spawn(async move {
            tokio::select! {
                _ = recv(&mut term) => {}
                _ = recv(&mut int) => {}
            }
            tracing::info!("shutdown signal received; draining");
            token.cancel();
        });
    }
}

async fn recv(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
