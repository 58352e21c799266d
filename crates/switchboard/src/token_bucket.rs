//! The token bucket behind every rate in the server: the per-connection message budget
//! ([`crate::rate_limit`]) and the account attempt throttles ([`crate::throttle`]).
//!
//! A bucket holds at most `capacity` tokens and gains `per_sec` tokens a second; an action spends
//! one. The bucket keeps only its level and when it was last updated; the [`Rate`] is passed in,
//! so many buckets of one rate (one per connection, one per address) do not each store it.

use std::time::{Duration, Instant};

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    per_sec: f64,
    capacity: f64,
}

impl Rate {
    /// `per_sec` tokens a second, at most `capacity` (at least one) at once. A `per_sec` of zero
    /// or less means unlimited.
    pub fn new(per_sec: f64, capacity: f64) -> Self {
        Self {
            per_sec,
            capacity: capacity.max(1.0),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.per_sec <= 0.0
    }
}

/// One bucket's state.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A bucket holding its whole capacity.
    pub fn full(rate: &Rate, now: Instant) -> Self {
        Self {
            tokens: rate.capacity,
            updated: now,
        }
    }

    /// The level at `now`, refills included.
    pub fn level(&self, rate: &Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate.per_sec).min(rate.capacity)
    }

    /// Whether the bucket is full again at `now` (it then remembers nothing).
    pub fn is_full(&self, rate: &Rate, now: Instant) -> bool {
        self.level(rate, now) >= rate.capacity
    }

    /// When the bucket last changed.
    pub fn updated(&self) -> Instant {
        self.updated
    }

    /// Spend one token at `now`; `Err(wait)` when none is left, with the time until one is.
    pub fn take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        if rate.is_unlimited() {
            return Ok(());
        }
        self.tokens = self.level(rate, now);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
    }

    /// Return a token spent by [`TokenBucket::take`] that turned out not to count.
    pub fn give_back(&mut self, rate: &Rate, now: Instant) {
        self.tokens = (self.level(rate, now) + 1.0).min(rate.capacity);
        self.updated = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_at_once_then_the_rate() {
        let start = Instant::now();
        let rate = Rate::new(10.0, 3.0);
        let mut bucket = TokenBucket::full(&rate, start);
        for _ in 0..3 {
            assert!(bucket.take(&rate, start).is_ok());
        }
        assert_eq!(bucket.take(&rate, start), Err(Duration::from_millis(100)));
        bucket.give_back(&rate, start);
        assert!(bucket.take(&rate, start).is_ok());
        assert!(bucket.is_full(&rate, start + Duration::from_secs(1)));
        assert!(!bucket.is_full(&rate, start));
    }
}
