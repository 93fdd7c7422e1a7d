//! The one doubling backoff every retry loop uses (workers, outbox replay, reply publish,
//! admission), so each loop states only its bounds.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Waits that double from `min` up to `max`; `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The wait to use now; the following one doubles (up to `max`).
    pub fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// Sleeps the next wait; false when `stop` fired first.
    pub async fn wait(&mut self, stop: &CancellationToken) -> bool {
        let d = self.step();
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// Sleeps the next wait (no stop signal: the caller's task is cancelled instead).
    pub async fn sleep(&mut self) {
        tokio::time::sleep(self.step()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(50), ms(300));
        let steps: Vec<_> = (0..5).map(|_| b.step()).collect();
        assert_eq!(steps, [ms(50), ms(100), ms(200), ms(300), ms(300)]);
        b.reset();
        assert_eq!(b.step(), ms(50));
    }

    #[test]
    fn a_max_below_the_min_is_the_min() {
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(b.step(), Duration::from_secs(2));
        assert_eq!(b.step(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn wait_returns_false_when_stopped() {
        let stop = CancellationToken::new();
        stop.cancel();
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        assert!(
            !b.wait(&stop).await,
            "a stopped wait must not sleep a minute"
        );
    }
}
