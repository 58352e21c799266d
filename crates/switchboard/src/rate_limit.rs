//! The per-connection message budget: a token bucket refilled at the sustained rate up to the
//! burst. A message over budget is refused with a retry hint; a client that keeps sending while
//! refused is abusive and gets closed with 1008.

use std::time::Instant;

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

/// One connection's budget. 32 bytes; lives in the connection's task, no lock.
#[derive(Debug, Clone)]
pub struct MessageBudget {
    tokens: f64,
    refilled_at: Instant,
    per_sec: f64,
    burst: f64,
    refused_in_a_row: u32,
    max_refused_in_a_row: u32,
}

impl MessageBudget {
    /// `per_sec` sustained, `burst` at once, closing after `max_refused_in_a_row` refusals.
    /// A `per_sec` of 0 disables the limit.
    pub fn new(per_sec: u32, burst: u32, max_refused_in_a_row: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            refilled_at: now,
            per_sec: f64::from(per_sec),
            burst,
            refused_in_a_row: 0,
            max_refused_in_a_row: max_refused_in_a_row.max(1),
        }
    }

    /// Spend one message at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.per_sec <= 0.0 {
            return Verdict::Allowed;
        }
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_a_row = 0;
            return Verdict::Allowed;
        }
        self.refused_in_a_row += 1;
        if self.refused_in_a_row >= self.max_refused_in_a_row {
            return Verdict::Abusive;
        }
        let wait_secs = (1.0 - self.tokens) / self.per_sec;
        Verdict::Refused {
            retry_after_ms: (wait_secs * 1000.0).ceil() as u64,
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
