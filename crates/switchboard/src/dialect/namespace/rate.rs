//! A namespace's per-socket message rate: at most N messages in any 1 s window, kept as a sliding
//! window counter (this window's count plus the previous window's, weighted by how much of it
//! still overlaps), so a socket pays 16 bytes instead of a timestamp per allowed message.
//!
//! Over the rate, only the first message of a burst is answered with 429; the rest of the burst
//! is dropped and counted, so a flooding client does not get a flood of errors back. A message
//! that carries a `requestId` is always answered (its sender waits for that answer).

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateVerdict {
    Allowed,
    /// Over the rate: answer with 429 (the first of a burst).
    Refused,
    /// Over the rate, later in the same burst: drop and count.
    Dropped,
}

/// One socket's window. Times are milliseconds on any monotonic clock.
#[derive(Debug, Default)]
pub struct SlidingWindow {
    window_start_ms: u64,
    previous: u32,
    current: u32,
    /// A refusal was answered since the last allowed message.
    in_burst: bool,
}

const WINDOW_MS: u64 = 1000;

impl SlidingWindow {
    pub fn check(&mut self, per_sec: u32, now_ms: u64) -> RateVerdict {
        let elapsed = now_ms.saturating_sub(self.window_start_ms);
        if elapsed >= 2 * WINDOW_MS {
            self.previous = 0;
            self.current = 0;
            self.window_start_ms = now_ms - now_ms % WINDOW_MS;
        } else if elapsed >= WINDOW_MS {
            self.previous = self.current;
            self.current = 0;
            self.window_start_ms += WINDOW_MS;
        }
        let into_window = now_ms.saturating_sub(self.window_start_ms);
        let overlap = WINDOW_MS - into_window.min(WINDOW_MS);
        let estimate = u64::from(self.previous) * overlap / WINDOW_MS + u64::from(self.current);
        if estimate < u64::from(per_sec) {
            self.current = self.current.saturating_add(1);
            self.in_burst = false;
            return RateVerdict::Allowed;
        }
        self.refuse()
    }

    /// Book a message refused by another limit (the session core's) into the same burst rule.
    pub fn refuse(&mut self) -> RateVerdict {
        if std::mem::replace(&mut self.in_burst, true) {
            RateVerdict::Dropped
        } else {
            RateVerdict::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_rate_then_refuses_once_per_burst() {
        let mut window = SlidingWindow::default();
        let start = 10_000;
        for _ in 0..5 {
            assert_eq!(window.check(5, start), RateVerdict::Allowed);
        }
        assert_eq!(window.check(5, start + 1), RateVerdict::Refused);
        assert_eq!(window.check(5, start + 2), RateVerdict::Dropped);
        assert_eq!(window.check(5, start + 3), RateVerdict::Dropped);
        // Half a window later, half of the previous count still weighs on the estimate.
        for _ in 0..3 {
            assert_eq!(window.check(5, start + 1500), RateVerdict::Allowed);
        }
        assert_eq!(window.check(5, start + 1500), RateVerdict::Refused);
        // After two quiet windows everything is forgotten.
        for _ in 0..5 {
            assert_eq!(window.check(5, start + 5000), RateVerdict::Allowed);
        }
        assert_eq!(window.check(5, start + 5000), RateVerdict::Refused);
    }
}
