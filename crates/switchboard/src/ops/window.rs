//! Exact sliding-window message counts: "messages in the last minute" means the messages of the
//! last 60 whole seconds, not an average since start. One bucket per second in a ring as long
//! as the longest window asked for; a bucket remembers which second it counts, so a stale one
//! is ignored on read and reset on write without any sweeping task.

/// Per-second counts over the last `span` seconds.
#[derive(Debug, Clone)]
pub struct RateWindow {
    /// `(second since the Unix epoch, count)`; slot `s % len` holds second `s`.
    buckets: Box<[(u64, u32)]>,
}

impl RateWindow {
    /// A window able to answer for up to `span_secs` seconds (at least 1).
    pub fn new(span_secs: usize) -> Self {
        Self {
            buckets: vec![(u64::MAX, 0); span_secs.max(1)].into_boxed_slice(),
        }
    }

    /// Count one message at `now_ms`.
    pub fn record(&mut self, now_ms: u64) {
        let second = now_ms / 1000;
        let slot = &mut self.buckets[(second % self.buckets.len() as u64) as usize];
        if slot.0 == second {
            slot.1 = slot.1.saturating_add(1);
        } else {
            *slot = (second, 1);
        }
    }

    /// Messages in the last `secs` seconds up to `now_ms` (the current second included);
    /// `secs` is capped at the window's span.
    pub fn count(&self, now_ms: u64, secs: u64) -> u64 {
        let now = now_ms / 1000;
        let secs = secs.min(self.buckets.len() as u64);
        self.buckets
            .iter()
            .filter(|(second, _)| *second <= now && now - *second < secs)
            .map(|(_, count)| u64::from(*count))
            .sum()
    }

    /// Whether no message falls in the window at `now_ms` (the entry can be forgotten).
    pub fn is_idle(&self, now_ms: u64) -> bool {
        self.count(now_ms, self.buckets.len() as u64) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::RateWindow;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn counts_exactly_the_last_seconds() {
        let mut window = RateWindow::new(3600);
        for s in 0..120 {
            window.record(T0 + s * 1000);
        }
        let now = T0 + 119_500;
        assert_eq!(window.count(now, 60), 60);
        assert_eq!(window.count(now, 3600), 120);
        // Ten minutes later the minute is empty, the hour still holds them all.
        let later = now + 600_000;
        assert_eq!(window.count(later, 60), 0);
        assert_eq!(window.count(later, 3600), 120);
        assert_eq!(window.count(now + 3_600_000, 3600), 0);
    }

    #[test]
    fn a_slot_reused_a_lap_later_starts_again() {
        let mut window = RateWindow::new(60);
        window.record(T0);
        window.record(T0);
        window.record(T0 + 60_000);
        assert_eq!(window.count(T0 + 60_000, 60), 1);
        assert!(!window.is_idle(T0 + 60_000));
        assert!(window.is_idle(T0 + 121_000));
    }
}
