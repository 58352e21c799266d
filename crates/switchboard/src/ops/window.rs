//! Exact sliding-window message counts: "messages in the last minute" means the messages of the
//! last 60 whole seconds, not an average since start. One bucket per second in a ring as long
//! as the longest window asked for; a bucket remembers which second it counts, so a stale one
//! is ignored on read and reset on write without any sweeping task.

use std::sync::atomic::{AtomicU64, Ordering};

/// Per-second counts over the last `span` seconds. Lock-free: sessions on every core count into
/// it at once, so each bucket is one atomic word holding its second and its count, updated by
/// compare-and-swap; no count is lost, and a reader never waits for a writer.
#[derive(Debug)]
pub struct RateWindow {
    /// Slot `s % len` holds second `s`: the second (Unix, 32 bits) above the count (32 bits).
    buckets: Box<[AtomicU64]>,
}

/// A slot that never counted: its second is past any real one, so reads skip it.
const EMPTY: u64 = u64::MAX;

fn pack(second: u32, count: u32) -> u64 {
    (u64::from(second) << 32) | u64::from(count)
}

fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

impl RateWindow {
    /// A window able to answer for up to `span_secs` seconds (at least 1).
    pub fn new(span_secs: usize) -> Self {
        Self {
            buckets: (0..span_secs.max(1))
                .map(|_| AtomicU64::new(EMPTY))
                .collect(),
        }
    }

    /// Count one message at `now_ms`.
    pub fn record(&self, now_ms: u64) {
        let second = u32::try_from(now_ms / 1000).unwrap_or(u32::MAX - 1);
        let slot = &self.buckets[(u64::from(second) % self.buckets.len() as u64) as usize];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let (held, count) = unpack(current);
            let next = if current == EMPTY || held < second {
                pack(second, 1)
            } else if held == second {
                pack(second, count.saturating_add(1))
            } else {
                // A later lap already holds the slot (this writer read the clock just before a
                // second turned over a whole span ago): outside every window, not counted.
                return;
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Messages in the last `secs` seconds up to `now_ms` (the current second included);
    /// `secs` is capped at the window's span.
    pub fn count(&self, now_ms: u64, secs: u64) -> u64 {
        let now = now_ms / 1000;
        let secs = secs.min(self.buckets.len() as u64);
        self.buckets
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|word| *word != EMPTY)
            .map(unpack)
            .filter(|(second, _)| u64::from(*second) <= now && now - u64::from(*second) < secs)
            .map(|(_, count)| u64::from(count))
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
        let window = RateWindow::new(3600);
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
        let window = RateWindow::new(60);
        window.record(T0);
        window.record(T0);
        window.record(T0 + 60_000);
        assert_eq!(window.count(T0 + 60_000, 60), 1);
        assert!(!window.is_idle(T0 + 60_000));
        assert!(window.is_idle(T0 + 121_000));
    }

    #[test]
    fn threads_counting_at_once_lose_nothing() {
        let window = std::sync::Arc::new(RateWindow::new(60));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let window = window.clone();
                std::thread::spawn(move || {
                    for n in 0..10_000u64 {
                        window.record(T0 + (n % 3) * 1000);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(window.count(T0 + 2_000, 60), 40_000);
    }
}
