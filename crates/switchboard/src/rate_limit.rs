//! The per-connection message budget: a token bucket refilled at the sustained rate up to the
//! burst. A message over budget is refused with a retry hint; a client that keeps sending while
//! refused is abusive and gets closed with 1008.

use std::time::Instant;

use crate::token_bucket::{Rate, TokenBucket};

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over budget; the next message will be allowed after this many milliseconds.
    Refused {
        retry_after_ms: u64,
    },
    /// Refused too many times in a row: close the connection.
    Abusive,
}

/// One connection's budget; lives in the connection's task, no lock.
#[derive(Debug, Clone)]
pub struct MessageBudget {
    bucket: TokenBucket,
    rate: Rate,
    refused_in_a_row: u32,
    max_refused_in_a_row: u32,
}

impl MessageBudget {
    /// `per_sec` sustained, `burst` at once, closing after `max_refused_in_a_row` refusals.
    /// A `per_sec` of 0 disables the limit.
    pub fn new(per_sec: u32, burst: u32, max_refused_in_a_row: u32, now: Instant) -> Self {
        let rate = Rate::new(f64::from(per_sec), f64::from(burst));
        Self {
            bucket: TokenBucket::full(&rate, now),
            rate,
            refused_in_a_row: 0,
            max_refused_in_a_row: max_refused_in_a_row.max(1),
        }
    }

    /// Spend one message at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        match self.bucket.take(&self.rate, now) {
            Ok(()) => {
                self.refused_in_a_row = 0;
                Verdict::Allowed
            }
            Err(_) if self.refused_in_a_row + 1 >= self.max_refused_in_a_row => {
                self.refused_in_a_row += 1;
                Verdict::Abusive
            }
            Err(wait) => {
                self.refused_in_a_row += 1;
                Verdict::Refused {
                    retry_after_ms: (wait.as_secs_f64() * 1000.0).ceil() as u64,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(10, 3, 100, start);
        for _ in 0..3 {
            assert_eq!(budget.check(start), Verdict::Allowed);
        }
        assert_eq!(
            budget.check(start),
            Verdict::Refused {
                retry_after_ms: 100
            }
        );
        // 100 ms later one more token is back.
        let later = start + Duration::from_millis(100);
        assert_eq!(budget.check(later), Verdict::Allowed);
        assert!(matches!(budget.check(later), Verdict::Refused { .. }));
        // A long pause refills only up to the burst.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(budget.check(much_later), Verdict::Allowed);
        }
        assert!(matches!(budget.check(much_later), Verdict::Refused { .. }));
    }

    #[test]
    fn refusing_too_often_in_a_row_is_abuse() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(1, 1, 3, start);
        assert_eq!(budget.check(start), Verdict::Allowed);
        assert!(matches!(budget.check(start), Verdict::Refused { .. }));
        assert!(matches!(budget.check(start), Verdict::Refused { .. }));
        assert_eq!(budget.check(start), Verdict::Abusive);
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(0, 1, 1, start);
        for _ in 0..1000 {
            assert_eq!(budget.check(start), Verdict::Allowed);
        }
    }
}
