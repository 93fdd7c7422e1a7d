//! A connection's response deadline, kept for the connection's life and moved forward for
//! every read. `tokio::time::timeout` around each read would put a timer into the runtime's
//! wheel and take it out again for every response; moving an armed timer later is a single
//! atomic update (tokio files it again only once the old instant comes round).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// The read did not finish before its deadline.
#[derive(Debug)]
pub struct Elapsed;

pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
}

impl Deadline {
    pub fn new(timeout: Duration) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Runs `work` until it finishes or `until` passes, whichever comes first.
    pub async fn run<F: Future>(&mut self, until: Instant, work: F) -> Result<F::Output, Elapsed> {
        self.sleep.as_mut().reset(until.into());
        tokio::select! {
            biased;
            out = work => Ok(out),
            () = &mut self.sleep => Err(Elapsed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_run_gets_its_own_deadline() {
        let mut deadline = Deadline::new(Duration::from_secs(1));
        let start = tokio::time::Instant::now().into_std();
        let done = deadline
            .run(start + Duration::from_secs(1), async { 7 })
            .await;
        assert_eq!(done.unwrap(), 7);
        // A later deadline is honoured, not the first one.
        let slow = tokio::time::sleep(Duration::from_millis(1500));
        let later = tokio::time::Instant::now() + Duration::from_secs(2);
        assert!(deadline.run(later.into_std(), slow).await.is_ok());
        // And an expired one fails the work.
        let never = std::future::pending::<()>();
        let soon = tokio::time::Instant::now() + Duration::from_millis(10);
        assert!(deadline.run(soon.into_std(), never).await.is_err());
    }
}
