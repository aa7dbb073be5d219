//! Retrying a notification: the host makes the attempts, this module says
//! when the next one is due (Alertmanager's `RetryStage`).
//!
//! The first attempt is immediate. After a failure the next one waits an
//! exponentially growing interval: 500 ms, ×1.5 per attempt, each randomised
//! by ±50 %, capped at 60 s (cenkalti/backoff's defaults, which Alertmanager
//! uses). Attempts stop at the notification's deadline — the flush budget of
//! `max(group_interval, 10s)` — or at the first error the integration
//! declares permanent (for HTTP: a 4xx other than 429).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::timeutil::delta;

/// First retry interval.
pub const INITIAL_INTERVAL: Duration = Duration::from_millis(500);
/// Growth per attempt.
pub const MULTIPLIER: f64 = 1.5;
/// Each interval is drawn from `[i − 50 %, i + 50 %]`.
pub const RANDOMIZATION_FACTOR: f64 = 0.5;
/// Intervals stop growing here.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// A flush may take at least this long, however short `group_interval` is
/// (Alertmanager's `notify.MinTimeout`).
pub const MIN_FLUSH_BUDGET: Duration = Duration::from_secs(10);

/// How long a flush's notifications may be retried: `max(group_interval,
/// 10s)`, as Alertmanager's dispatcher timeout.
pub fn flush_budget(group_interval: Duration) -> Duration {
    group_interval.max(MIN_FLUSH_BUDGET)
}

/// Exponential back-off with jitter.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    current: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    /// Starts at [`INITIAL_INTERVAL`].
    pub fn new() -> Self {
        Backoff {
            current: INITIAL_INTERVAL,
        }
    }

    /// The wait before the next attempt; `random` is uniform in `[0, 1)`.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let current = self.current.as_nanos() as f64;
        let d = RANDOMIZATION_FACTOR * current;
        let (lo, hi) = (current - d, current + d);
        let next = lo + random.clamp(0.0, 1.0) * (hi - lo + 1.0);
        let max = MAX_INTERVAL.as_nanos() as f64;
        self.current = if current >= max / MULTIPLIER {
            MAX_INTERVAL
        } else {
            Duration::from_nanos((current * MULTIPLIER) as u64)
        };
        Duration::from_nanos(next as u64)
    }
}

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered.
    Delivered,
    /// Failed; may succeed later (network error, 5xx, 429).
    Retryable(String),
    /// Failed for good (bad request, bad credentials).
    Permanent(String),
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Report the notification delivered.
    Done,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Report the notification failed, with the last error.
    GiveUp(String),
}

/// The retry state of one notification.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryState {
    backoff: Backoff,
    /// Attempts made so far.
    pub attempts: u32,
    /// No attempt starts after this.
    pub deadline: DateTime<Utc>,
}

impl RetryState {
    /// For a notification with this retry deadline.
    pub fn new(deadline: DateTime<Utc>) -> Self {
        RetryState {
            backoff: Backoff::new(),
            attempts: 0,
            deadline,
        }
    }

    /// Records an attempt that ended at `now`; `random` in `[0, 1)` jitters
    /// the wait.
    pub fn after_attempt(
        &mut self,
        outcome: AttemptOutcome,
        now: DateTime<Utc>,
        random: f64,
    ) -> RetryDecision {
        self.attempts += 1;
        match outcome {
            AttemptOutcome::Delivered => RetryDecision::Done,
            AttemptOutcome::Permanent(e) => RetryDecision::GiveUp(format!(
                "notify retry canceled due to unrecoverable error after {} attempts: {e}",
                self.attempts
            )),
            AttemptOutcome::Retryable(e) => {
                let at = now + delta(self.backoff.next_delay(random));
                if at >= self.deadline {
                    RetryDecision::GiveUp(format!(
                        "notify retry canceled after {} attempts: {e}",
                        self.attempts
                    ))
                } else {
                    RetryDecision::RetryAt(at)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    #[test]
    fn backoff_grows_by_half_with_jitter_and_caps() {
        let mut b = Backoff::new();
        // random 0.5 gives the middle of the interval (+0.5ns).
        let d: Vec<u128> = (0..4).map(|_| b.next_delay(0.5).as_millis()).collect();
        assert_eq!(d, vec![500, 750, 1125, 1687]);
        let mut b = Backoff::new();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(250));
        let mut b = Backoff::new();
        assert!(b.next_delay(0.999_999) <= Duration::from_millis(750));
        let mut b = Backoff::new();
        for _ in 0..30 {
            b.next_delay(0.5);
        }
        let capped = b.next_delay(0.5);
        assert!(
            capped <= Duration::from_secs(60) && capped >= Duration::from_secs(59),
            "{capped:?}"
        );
    }

    #[test]
    fn gives_up_at_deadline_or_permanent_error() {
        let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let mut r = RetryState::new(t0 + TimeDelta::seconds(2));
        assert!(matches!(
            r.after_attempt(AttemptOutcome::Retryable("503".into()), t0, 0.5),
            RetryDecision::RetryAt(_)
        ));
        assert!(matches!(
            r.after_attempt(
                AttemptOutcome::Retryable("503".into()),
                t0 + TimeDelta::milliseconds(1900),
                0.5
            ),
            RetryDecision::GiveUp(_)
        ));
        let mut r = RetryState::new(t0 + TimeDelta::seconds(300));
        assert!(matches!(
            r.after_attempt(AttemptOutcome::Permanent("400".into()), t0, 0.5),
            RetryDecision::GiveUp(_)
        ));
        assert_eq!(
            flush_budget(Duration::from_secs(1)),
            Duration::from_secs(10)
        );
        assert_eq!(
            flush_budget(Duration::from_secs(300)),
            Duration::from_secs(300)
        );
    }
}
