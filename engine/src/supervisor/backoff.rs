//! Restart backoff: exponential delays between restarts of a crashing service,
//! reset once the service has stayed up long enough to count as recovered.

use std::time::Duration;

/// First delay after a failure.
pub const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// Upper bound on any delay, so a service that recovers is retried promptly.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// Uptime after which the next failure starts again from `INITIAL_DELAY`.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// Exponential backoff: 100 ms, 200 ms, 400 ms, … capped at 30 s.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    consecutive_failures: u32,
}

impl Backoff {
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before the next restart, given how long the run that just
    /// ended was up; a long enough run forgets earlier failures.
    pub fn next_delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= RESET_AFTER {
            self.consecutive_failures = 0;
        }
        // Past 2^9 * 100 ms the cap applies anyway; clamping the exponent keeps
        // the shift from overflowing however long a service keeps crashing.
        let exponent = self.consecutive_failures.min(16);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        INITIAL_DELAY
            .saturating_mul(1u32 << exponent)
            .min(MAX_DELAY)
    }

    /// Forget earlier failures (after a manual restart, for instance).
    pub fn reset(&mut self) {
        self.consecutive_failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_100ms_up_to_the_cap() {
        let mut backoff = Backoff::new();
        let delays: Vec<u128> = (0..12)
            .map(|_| backoff.next_delay(Duration::ZERO).as_millis())
            .collect();
        assert_eq!(
            delays,
            vec![100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
    }

    #[test]
    fn long_uptime_resets_the_schedule() {
        let mut backoff = Backoff::new();
        for _ in 0..5 {
            backoff.next_delay(Duration::from_secs(1));
        }
        assert_eq!(
            backoff.next_delay(Duration::from_secs(1)),
            Duration::from_millis(3200)
        );
        assert_eq!(backoff.next_delay(RESET_AFTER), INITIAL_DELAY);
        assert_eq!(
            backoff.next_delay(Duration::ZERO),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn many_failures_never_overflow() {
        let mut backoff = Backoff::new();
        for _ in 0..100 {
            assert!(backoff.next_delay(Duration::ZERO) <= MAX_DELAY);
        }
    }
}
